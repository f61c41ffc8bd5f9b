//! CloudTrail log file integrity, checked on a local copy of a trail's bucket.
//!
//! With log file validation on, CloudTrail delivers every hour, for each account and region of a
//! trail, a digest file (`AWSLogs/[ORG/]ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/
//! ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_YYYYMMDDTHHMMSSZ.json.gz`). It lists the log
//! files delivered in that hour with the SHA-256 of each one's inflated content, and names the
//! previous digest with the SHA-256 of that digest's inflated content: each trail and region has
//! a chain of digests. [`verify`] checks a copy against its digests:
//! - every listed log file is there and hashes to what its digest recorded;
//! - every digest's predecessor is there and hashes to what the next one recorded; a digest
//!   that names no predecessor while older digests of its chain exist marks a time when logging
//!   or validation was off (a gap);
//! - no CloudTrail log file lies in time the digests of its account and region cover without
//!   being listed by one (a file written into the bucket afterwards);
//! - each digest sits under the name its own `digestS3Object` gives.
//!
//! The signature of each digest (RSA over its hash, its place and the previous signature) is
//! kept in S3 object metadata, which a copy of the files does not have: in a copy, the newest
//! digest of a chain is vouched for by nothing, so one who can rewrite the bucket could rewrite
//! it and the logs it lists consistently (everything older is held by the chain). Read from the
//! bucket itself (a [`Store`] that keeps signatures, `aws::verify`), each digest's signature is
//! checked against CloudTrail's public keys ([`PublicKeys`]): a digest CloudTrail did not sign
//! is named.
//!
//! Every file is untrusted: an unreadable digest or log is a problem named by its path, never a
//! failure of the whole check.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use trailhound_event::parse_event_time;

use crate::archive::Met;
use crate::discover::{FileTime, earlier, file_time, later};
use crate::window::TimeWindow;

/// Largest digest file, inflated, that is read (real ones are a few hundred KB at most).
pub const DIGEST_MAX_BYTES: u64 = 16 << 20;

/// Largest log file, inflated, that is hashed (`--max-file-size`'s default).
pub const LOG_MAX_BYTES: u64 = 1 << 30;

/// A log file delivered this close to either end of the time its digests cover is not judged:
/// its delivery may fall in the hour before or after, whose digest the copy does not hold.
const EDGE_MINUTES: i64 = 30;

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrityKind {
    /// A listed log file whose content is not what its digest recorded.
    LogModified,
    /// A listed log file the copy does not hold.
    LogMissing,
    /// A listed log file that could not be read or inflated.
    LogUnreadable,
    /// A CloudTrail log file delivered in time the digests cover, listed by none of them.
    LogUnlisted,
    /// A digest whose content is not what the next digest of its chain recorded.
    DigestModified,
    /// A digest the next one names, which the copy does not hold though it holds older ones.
    DigestMissing,
    /// A digest no later digest names, though the next one names another in its place.
    DigestUnlinked,
    /// A digest that could not be read, inflated or understood.
    DigestUnreadable,
    /// A digest under another name than its own `digestS3Object` gives.
    DigestMoved,
    /// A digest that names no predecessor while older digests of its chain exist: the time
    /// between them has no digest (logging or log file validation was off).
    DigestGap,
    /// A digest in the bucket without the signature CloudTrail puts in every digest's metadata.
    DigestUnsigned,
    /// A digest whose signature does not verify with CloudTrail's public key for it: its
    /// content, its place or its link was written by someone else.
    DigestSignatureInvalid,
}

impl IntegrityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrityKind::LogModified => "log-modified",
            IntegrityKind::LogMissing => "log-missing",
            IntegrityKind::LogUnreadable => "log-unreadable",
            IntegrityKind::LogUnlisted => "log-unlisted",
            IntegrityKind::DigestModified => "digest-modified",
            IntegrityKind::DigestMissing => "digest-missing",
            IntegrityKind::DigestUnlinked => "digest-unlinked",
            IntegrityKind::DigestUnreadable => "digest-unreadable",
            IntegrityKind::DigestMoved => "digest-moved",
            IntegrityKind::DigestGap => "digest-gap",
            IntegrityKind::DigestUnsigned => "digest-unsigned",
            IntegrityKind::DigestSignatureInvalid => "digest-signature-invalid",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntegrityProblem {
    pub kind: IntegrityKind,
    /// The local file it is about, when the copy holds it.
    pub file: Option<String>,
    /// The S3 key a digest gives for it, when one does.
    pub object: Option<String>,
    /// The local digest that lists or names it.
    pub digest: Option<String>,
    /// Start and end of a gap.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub detail: String,
}

/// Counts over digest files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DigestFigures {
    /// Digest files found.
    pub found: u64,
    /// Digests read whose hour lies outside the window asked for: used to check the links of
    /// those inside it, not judged themselves.
    pub outside_window: u64,
    /// Links from a digest to its predecessor whose hash matched.
    pub links_valid: u64,
    pub modified: u64,
    pub missing: u64,
    pub unlinked: u64,
    pub unreadable: u64,
    pub moved: u64,
    pub gaps: u64,
    /// Signatures checked and valid, invalid, and digests without one (read from a bucket).
    pub signatures_valid: u64,
    pub signatures_invalid: u64,
    pub unsigned: u64,
    /// Digests whose signature could not be checked: read from a copy, which keeps none, or
    /// without CloudTrail's public keys.
    pub signatures_unchecked: u64,
}

/// Counts over log files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogFigures {
    /// Log files the digests list.
    pub listed: u64,
    pub valid: u64,
    pub modified: u64,
    pub missing: u64,
    pub unreadable: u64,
    /// Local CloudTrail log files found.
    pub local: u64,
    /// Local log files in covered time that no digest lists.
    pub unlisted: u64,
    /// Local log files no digest lists, outside the time the digests cover (or at its edges).
    pub not_covered: u64,
}

/// One chain: the digests of one trail for one account and region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chain {
    pub account: String,
    pub region: String,
    pub trail: String,
    pub home_region: String,
    pub digests: u64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The newest digest: nothing in a copy vouches for it but its signature, which S3 keeps.
    pub newest: String,
    /// Whether the newest digest's signature was checked and is valid.
    pub newest_signed: bool,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Why signatures were not checked, when they were not.
    pub signatures_unchecked_because: Option<String>,
    pub digests: DigestFigures,
    pub logs: LogFigures,
    pub chains: Vec<Chain>,
    pub problems: Vec<IntegrityProblem>,
}

impl Verification {
    /// Whether anything is wrong.
    pub fn clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What a digest's file name says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ChainKey {
    account: String,
    region: String,
    trail: String,
    home_region: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DigestName {
    chain: ChainKey,
    backfill: bool,
}

/// `ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_YYYYMMDDTHHMMSSZ[_backfill].json[.gz]`; a
/// trail's name may hold underscores, a region's never does.
fn digest_name(name: &str) -> Option<DigestName> {
    let stem = name.strip_suffix(".gz").unwrap_or(name).strip_suffix(".json")?;
    let (account, rest) = stem.split_once("_CloudTrail-Digest_")?;
    let (rest, backfill) = match rest.strip_suffix("_backfill") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let (rest, stamp) = rest.rsplit_once('_')?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok()?;
    let (region, rest) = rest.split_once('_')?;
    let (trail, home_region) = rest.rsplit_once('_')?;
    if [account, region, trail, home_region].iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(DigestName {
        chain: ChainKey {
            account: account.to_string(),
            region: region.to_string(),
            trail: trail.to_string(),
            home_region: home_region.to_string(),
        },
        backfill,
    })
}

/// The account and region of a CloudTrail log file's name
/// (`ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ_RANDOM.json.gz`).
fn log_name(name: &str) -> Option<(&str, &str)> {
    let mut parts = name.split('_');
    let account = parts.next()?;
    if parts.next()? != "CloudTrail" {
        return None;
    }
    let region = parts.next()?;
    Some((account, region))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Digest,
    /// A CloudTrail log file (`_CloudTrail_`), which digests must list.
    Log,
    /// An Insights file: verified when listed, never judged unlisted.
    Insight,
}

fn kind_of(name: &str) -> Option<Kind> {
    let lower = name.to_ascii_lowercase();
    if !(lower.ends_with(".json.gz") || lower.ends_with(".json")) {
        return None;
    }
    if name.contains("_CloudTrail-Digest_") {
        Some(Kind::Digest)
    } else if name.contains("_CloudTrail_") {
        Some(Kind::Log)
    } else if name.contains("_CloudTrail-Insight_") {
        Some(Kind::Insight)
    } else {
        None
    }
}

/// The last part of an S3 key or a path.
fn base(key: &str) -> &str {
    key.rsplit(['/', '\\']).next().unwrap_or(key)
}

/// Feeds the file's content, inflated when it is gzip, to `each`, and returns its size; more
/// than `limit` bytes is an error.
fn inflated(path: &Path, limit: u64, each: impl FnMut(&[u8])) -> Result<u64, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    inflated_from(file, limit, each)
}

/// [`inflated`] from a reader (an archive's entry, an object's body).
pub(crate) fn inflated_from(reader: impl Read, limit: u64, mut each: impl FnMut(&[u8])) -> Result<u64, String> {
    let mut file = std::io::BufReader::with_capacity(1 << 16, reader);
    let mut magic = [0u8; 2];
    let mut have = 0;
    while have < 2 {
        match file.read(&mut magic[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let head = magic.get(..have).unwrap_or_default();
    let chained = std::io::Cursor::new(head.to_vec()).chain(file);
    let mut reader: Box<dyn Read> = if head == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(chained))
    } else {
        Box::new(chained)
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot inflate: {e}")),
        };
        total += n as u64;
        if total > limit {
            return Err(format!("larger than {limit} bytes once inflated"));
        }
        each(buf.get(..n).unwrap_or_default());
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The SHA-256 (hex) of the file's inflated content.
fn file_hash(path: &Path, limit: u64) -> Result<String, String> {
    let mut hasher = Sha256::new();
    inflated(path, limit, |chunk| hasher.update(chunk))?;
    Ok(hex(&hasher.finalize()))
}

/// What was taken from an archive's entry while the archive was read (an archive is one
/// stream): a digest's inflated content, or a log file's hash.
enum Prepared {
    Digest(Result<Vec<u8>, String>),
    Hash(Result<String, String>),
}

/// Reads the entries of the archive at `path` that are digests or log files, as files named
/// `ARCHIVE!/ENTRY` (an entry's path is only a name: nothing is written, nothing else opened).
/// An archive that breaks, or an entry that cannot be read, is an error beside the entries read.
fn read_archive(path: &Path, kind: crate::archive::Kind) -> (Vec<(PathBuf, Kind, Prepared)>, Vec<String>) {
    let mut found = Vec::new();
    let mut take = |name: &str, reader: &mut dyn Read| {
        let Some(kind) = kind_of(base(name)) else {
            return;
        };
        let prepared = match kind {
            Kind::Digest => {
                let mut content = Vec::new();
                Prepared::Digest(
                    inflated_from(reader, DIGEST_MAX_BYTES, |chunk| content.extend_from_slice(chunk)).map(|_| content),
                )
            }
            Kind::Log | Kind::Insight => {
                let mut hasher = Sha256::new();
                Prepared::Hash(
                    inflated_from(reader, LOG_MAX_BYTES, |chunk| hasher.update(chunk)).map(|_| hex(&hasher.finalize())),
                )
            }
        };
        found.push((PathBuf::from(format!("{}!/{name}", path.display())), kind, prepared));
    };
    let mut unreadable = Vec::new();
    let outcome = std::fs::File::open(path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|file| {
            crate::archive::walk_entries(file, kind, &mut |met| match met {
                Met::File { path: name, reader, .. } => take(name, reader),
                Met::Unreadable { index, message } => unreadable.push(format!("entry #{index}: {message}")),
            })
            .map_err(|broken| broken.message)
        });
    let broken = unreadable
        .into_iter()
        .chain(outcome.err())
        .map(|e| format!("{}: {e}", path.display()))
        .collect();
    (found, broken)
}

/// A log file as a digest lists it.
#[derive(Debug, Clone)]
struct Listed {
    object: String,
    hash: String,
}

/// A digest file, read.
#[derive(Debug, Clone)]
struct DigestFile {
    path: PathBuf,
    name: DigestName,
    /// SHA-256 of its inflated content.
    hash: String,
    object: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// The predecessor's key and recorded hash.
    previous: Option<(String, String)>,
    logs: Vec<Listed>,
    /// Its hour overlaps the window asked for.
    in_scope: bool,
    /// What its signature covers, as the digest writes it.
    signed: SignedFields,
    /// Its signature, when the store keeps it.
    signature: Option<Signature>,
    /// The key it was read from, when read from the bucket.
    key: Option<String>,
}

/// The fields of a digest its signature covers, as written (`digestEndTime` is signed as its
/// text, not as a time).
#[derive(Debug, Clone, Default)]
struct SignedFields {
    end: String,
    bucket: String,
    fingerprint: String,
    /// `previousDigestSignature`, or `null` for the first digest of a chain (as CloudTrail
    /// signs it).
    previous_signature: String,
}

/// A digest's signature as S3 keeps it in the object's metadata (`x-amz-meta-signature`, hex,
/// and `x-amz-meta-signature-algorithm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub hex: String,
    pub algorithm: String,
}

/// A digest file as a [`Store`] read it.
#[derive(Debug, Clone)]
pub struct ReadDigest {
    /// Inflated content (at most [`DIGEST_MAX_BYTES`]).
    pub content: Vec<u8>,
    pub signature: Option<Signature>,
    /// The S3 key it was read from, when read from the bucket: it must be the one the digest
    /// names.
    pub key: Option<String>,
}

/// Where the files checked are read from: a copy on disk (and in archives), or the bucket.
pub trait Store: Sync {
    /// The digests at `paths`, in order.
    fn digests(&self, paths: &[&Path]) -> Vec<Result<ReadDigest, String>>;
    /// The SHA-256 (hex) of each log file's inflated content, in order.
    fn log_hashes(&self, paths: &[&Path]) -> Vec<Result<String, String>>;
    /// Whether the store keeps digests' signatures (a bucket does; a copy does not).
    fn keeps_signatures(&self) -> bool {
        false
    }
}

/// CloudTrail's public keys, by fingerprint: the DER `RSAPublicKey` (PKCS #1) of each, as
/// `ListPublicKeys` returns them.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys {
    by_fingerprint: HashMap<String, Vec<u8>>,
}

impl PublicKeys {
    pub fn add(&mut self, fingerprint: &str, der: Vec<u8>) {
        self.by_fingerprint.insert(fingerprint.to_ascii_lowercase(), der);
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    /// The keys in what `aws cloudtrail list-public-keys` prints: `{"PublicKeyList": [{"Value":
    /// BASE64, "Fingerprint": HEX, ...}]}`.
    pub fn add_cli_json(&mut self, text: &str) -> Result<usize, String> {
        use base64::Engine as _;
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Some(list) = value.get("PublicKeyList").and_then(|l| l.as_array()) else {
            return Err("no `PublicKeyList` list".into());
        };
        for (i, key) in list.iter().enumerate() {
            let entry = |e: String| format!("PublicKeyList[{i}]: {e}");
            let fingerprint = required(key, "Fingerprint").map_err(entry)?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(required(key, "Value").map_err(entry)?)
                .map_err(|e| entry(format!("`Value` is not base64: {e}")))?;
            self.add(fingerprint, der);
        }
        Ok(list.len())
    }

    /// Whether `signature` is CloudTrail's over `digest`: RSA PKCS #1 v1.5 with SHA-256 over
    /// `END\nBUCKET/KEY\nHASH\nPREVIOUS-SIGNATURE`.
    fn check(&self, digest: &DigestFile, signature: &Signature) -> Result<(), String> {
        if !signature.algorithm.eq_ignore_ascii_case("SHA256withRSA") {
            return Err(format!(
                "signed with {:?}; CloudTrail signs with SHA256withRSA",
                signature.algorithm
            ));
        }
        let fields = &digest.signed;
        let Some(key) = self.by_fingerprint.get(&fields.fingerprint.to_ascii_lowercase()) else {
            return Err(format!(
                "its key (fingerprint {:?}) is none of CloudTrail's public keys for its time and region",
                fields.fingerprint
            ));
        };
        let bytes = unhex(&signature.hex).ok_or("its signature is not hex")?;
        let message = format!(
            "{}\n{}/{}\n{}\n{}",
            fields.end, fields.bucket, digest.object, digest.hash, fields.previous_signature
        );
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key)
            .verify(message.as_bytes(), &bytes)
            .map_err(|_| {
                "its signature does not verify with CloudTrail's public key: written by someone else".to_string()
            })
    }
}

/// Bytes from hex text; `None` when it is not hex.
fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let digit = |b: u8| char::from(b).to_digit(16);
            Some((digit(*pair.first()?)? * 16 + digit(*pair.get(1)?)?) as u8)
        })
        .collect()
}

fn text_field<'v>(value: &'v serde_json::Value, key: &str) -> Result<Option<&'v str>, String> {
    match value.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{key}` is not a string")),
    }
}

fn required<'v>(value: &'v serde_json::Value, key: &str) -> Result<&'v str, String> {
    text_field(value, key)?.ok_or_else(|| format!("no `{key}`"))
}

fn time_field(value: &serde_json::Value, key: &str) -> Result<DateTime<Utc>, String> {
    let text = required(value, key)?;
    parse_event_time(text).ok_or_else(|| format!("`{key}` is not a time: {text:?}"))
}

/// Understands one digest file, as read.
fn read_digest(path: &Path, name: DigestName, read: ReadDigest) -> Result<DigestFile, String> {
    let content = &read.content;
    let hash = hex(&Sha256::digest(content));
    let value: serde_json::Value = serde_json::from_slice(content).map_err(|e| format!("not JSON: {e}"))?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    let object = required(&value, "digestS3Object")?.to_string();
    let start = time_field(&value, "digestStartTime")?;
    let end = time_field(&value, "digestEndTime")?;
    let previous = match text_field(&value, "previousDigestS3Object")? {
        Some(key) => {
            let recorded = required(&value, "previousDigestHashValue")?;
            Some((key.to_string(), recorded.to_ascii_lowercase()))
        }
        None => None,
    };
    let logs = match value.get("logFiles") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let entry = |e: String| format!("logFiles[{i}]: {e}");
                Ok(Listed {
                    object: required(item, "s3Object").map_err(entry)?.to_string(),
                    hash: required(item, "hashValue").map_err(entry)?.to_ascii_lowercase(),
                })
            })
            .collect::<Result<_, String>>()?,
        Some(_) => return Err("`logFiles` is not a list".into()),
    };
    let signed = SignedFields {
        end: required(&value, "digestEndTime")?.to_string(),
        bucket: text_field(&value, "digestS3Bucket")?.unwrap_or_default().to_string(),
        fingerprint: text_field(&value, "digestPublicKeyFingerprint")?
            .unwrap_or_default()
            .to_string(),
        previous_signature: text_field(&value, "previousDigestSignature")?
            .unwrap_or("null")
            .to_string(),
    };
    Ok(DigestFile {
        path: path.to_path_buf(),
        name,
        hash,
        object,
        start,
        end,
        previous,
        logs,
        in_scope: true,
        signed,
        signature: read.signature,
        key: read.key,
    })
}

/// The files under `paths`, by kind, with the archives' entries (read now, on every core,
/// an archive at a time on each); errors walking and broken archives are returned beside them.
fn gather(paths: &[PathBuf]) -> Gathered {
    let mut files = Vec::new();
    let mut archives = Vec::new();
    let mut errors = Vec::new();
    for root in paths {
        for entry in walkdir::WalkDir::new(root).follow_links(true).sort_by_file_name() {
            match entry {
                Ok(entry) if entry.file_type().is_file() => {
                    let name = entry.file_name().to_string_lossy();
                    if let Some(kind) = kind_of(&name) {
                        files.push((entry.into_path(), kind));
                    } else if let Some(kind) = crate::archive::kind(&name) {
                        archives.push((entry.into_path(), kind));
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    let path = err.path().unwrap_or(root);
                    errors.push(format!("{}: {err}", path.display()));
                }
            }
        }
    }
    let read: Vec<_> = archives
        .par_iter()
        .map(|(path, kind)| read_archive(path, *kind))
        .collect();
    let mut prepared = HashMap::new();
    for (entries, broken) in read {
        for (path, kind, content) in entries {
            files.push((path.clone(), kind));
            prepared.insert(path, content);
        }
        errors.extend(broken);
    }
    Gathered {
        files,
        prepared,
        errors,
    }
}

/// What [`gather`] found.
struct Gathered {
    files: Vec<(PathBuf, Kind)>,
    prepared: HashMap<PathBuf, Prepared>,
    errors: Vec<String>,
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

impl IntegrityProblem {
    fn new(kind: IntegrityKind, detail: impl Into<String>) -> IntegrityProblem {
        IntegrityProblem {
            kind,
            file: None,
            object: None,
            digest: None,
            from: None,
            to: None,
            detail: detail.into(),
        }
    }
    fn file(mut self, path: &Path) -> IntegrityProblem {
        self.file = Some(shown(path));
        self
    }
    fn object(mut self, key: &str) -> IntegrityProblem {
        self.object = Some(key.to_string());
        self
    }
    fn digest(mut self, path: &Path) -> IntegrityProblem {
        self.digest = Some(shown(path));
        self
    }
    fn span(mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> IntegrityProblem {
        self.from = Some(from);
        self.to = Some(to);
        self
    }
}

/// Checks the log files and digests under `paths` (folders or files): the digests whose hour
/// overlaps `window` and the log files delivered in it. Errors walking the folders are returned
/// beside the result; everything about a file is a problem in it.
pub fn verify(paths: &[PathBuf], window: TimeWindow) -> (Verification, Vec<String>) {
    let Gathered {
        files,
        prepared,
        errors,
    } = gather(paths);
    let store = Copy { prepared };
    (checked(files, &store, None, window), errors)
}

/// Checks the files `names` (digests and log files; others are left alone) read from `store`,
/// with CloudTrail's public `keys` for the signatures when the store keeps them.
pub fn verify_store(
    names: Vec<PathBuf>,
    store: &dyn Store,
    keys: Option<&PublicKeys>,
    window: TimeWindow,
) -> Verification {
    let files = names
        .into_iter()
        .filter_map(|path| {
            let kind = kind_of(base(&path.to_string_lossy()))?;
            Some((path, kind))
        })
        .collect();
    checked(files, store, keys, window)
}

fn checked(
    files: Vec<(PathBuf, Kind)>,
    store: &dyn Store,
    keys: Option<&PublicKeys>,
    window: TimeWindow,
) -> Verification {
    let mut check = Check {
        window,
        store,
        keys,
        signed: HashSet::new(),
        result: Verification::default(),
        problems: Vec::new(),
    };
    let digests = check.read_digests(&files);
    check.signatures(&digests);
    check.chains(&digests);
    let listed = check.listed_logs(&files, &digests);
    check.unlisted_logs(&files, &digests, &listed);
    let mut result = check.result;
    result.problems = check.problems;
    result
        .problems
        .sort_by(|a, b| (a.kind, &a.file, &a.object, &a.digest).cmp(&(b.kind, &b.file, &b.object, &b.digest)));
    result
}

/// A copy on disk: files, and what was taken from archives' entries by their `ARCHIVE!/ENTRY`
/// names.
struct Copy {
    prepared: HashMap<PathBuf, Prepared>,
}

impl Store for Copy {
    fn digests(&self, paths: &[&Path]) -> Vec<Result<ReadDigest, String>> {
        paths
            .par_iter()
            .map(|&path| {
                let content = match self.prepared.get(path) {
                    Some(Prepared::Digest(content)) => content.clone()?,
                    _ => {
                        let mut read = Vec::new();
                        inflated(path, DIGEST_MAX_BYTES, |chunk| read.extend_from_slice(chunk))?;
                        read
                    }
                };
                Ok(ReadDigest {
                    content,
                    signature: None,
                    key: None,
                })
            })
            .collect()
    }

    fn log_hashes(&self, paths: &[&Path]) -> Vec<Result<String, String>> {
        paths
            .par_iter()
            .map(|&path| match self.prepared.get(path) {
                Some(Prepared::Hash(hash)) => hash.clone(),
                _ => file_hash(path, LOG_MAX_BYTES),
            })
            .collect()
    }
}

struct Check<'s> {
    window: TimeWindow,
    store: &'s dyn Store,
    keys: Option<&'s PublicKeys>,
    /// The digests whose signature was checked and is valid.
    signed: HashSet<PathBuf>,
    result: Verification,
    problems: Vec<IntegrityProblem>,
}

impl Check<'_> {
    /// Reads the digests; those that cannot be read are problems.
    fn read_digests(&mut self, files: &[(PathBuf, Kind)]) -> Vec<DigestFile> {
        let paths: Vec<&Path> = files
            .iter()
            .filter(|(_, k)| *k == Kind::Digest)
            .map(|(p, _)| p.as_path())
            .collect();
        self.result.digests.found = paths.len() as u64;
        let contents = self.store.digests(&paths);
        let read: Vec<Result<DigestFile, (&Path, String)>> = paths
            .iter()
            .zip(contents)
            .map(|(&path, content)| {
                let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
                digest_name(&name)
                    .ok_or_else(|| "not a digest file name CloudTrail writes".to_string())
                    .and_then(|parsed| read_digest(path, parsed, content?))
                    .map_err(|e| (path, e))
            })
            .collect();
        let mut digests = Vec::new();
        for digest in read {
            match digest {
                Ok(mut digest) => {
                    // The hour [start, end) overlaps the window.
                    digest.in_scope = self
                        .window
                        .overlaps(digest.start, earlier(digest.end, Duration::seconds(1)));
                    if !digest.in_scope {
                        self.result.digests.outside_window += 1;
                    }
                    digests.push(digest);
                }
                Err((path, message)) => {
                    self.result.digests.unreadable += 1;
                    self.problems
                        .push(IntegrityProblem::new(IntegrityKind::DigestUnreadable, message).file(path));
                }
            }
        }
        // Identical copies of one digest (a folder and its archive both given) are one.
        let mut seen = HashSet::new();
        digests.retain(|d| seen.insert((d.path.file_name().map(|n| n.to_os_string()), d.hash.clone())));
        for d in digests.iter().filter(|d| d.in_scope) {
            let local = d.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            // Read from the bucket, the whole key must be the one the digest names.
            if base(&d.object) != local || d.key.as_ref().is_some_and(|key| *key != d.object) {
                self.result.digests.moved += 1;
                let problem =
                    IntegrityProblem::new(IntegrityKind::DigestMoved, "its digestS3Object names another file");
                self.problems.push(problem.file(&d.path).object(&d.object));
            }
        }
        digests
    }

    /// Checks each digest's signature, when the store keeps them and CloudTrail's keys are
    /// known.
    fn signatures(&mut self, digests: &[DigestFile]) {
        let in_scope = digests.iter().filter(|d| d.in_scope);
        let keys = match self.keys {
            Some(keys) if self.store.keeps_signatures() => keys,
            _ => {
                self.result.digests.signatures_unchecked = in_scope.count() as u64;
                self.result.signatures_unchecked_because.get_or_insert_with(|| {
                    if self.store.keeps_signatures() {
                        "CloudTrail's public keys were not available".to_string()
                    } else {
                        "a copy of the files keeps no signatures (S3 keeps them in each digest's metadata)".to_string()
                    }
                });
                return;
            }
        };
        for d in in_scope {
            let (kind, detail) = match &d.signature {
                None => (
                    IntegrityKind::DigestUnsigned,
                    "no signature in its metadata: CloudTrail signs every digest it writes".to_string(),
                ),
                Some(signature) => match keys.check(d, signature) {
                    Ok(()) => {
                        self.result.digests.signatures_valid += 1;
                        self.signed.insert(d.path.clone());
                        continue;
                    }
                    Err(detail) => (IntegrityKind::DigestSignatureInvalid, detail),
                },
            };
            if kind == IntegrityKind::DigestUnsigned {
                self.result.digests.unsigned += 1;
            } else {
                self.result.digests.signatures_invalid += 1;
            }
            self.problems
                .push(IntegrityProblem::new(kind, detail).file(&d.path).object(&d.object));
        }
    }

    /// Follows each chain from its newest digest back, checking every link.
    fn chains(&mut self, digests: &[DigestFile]) {
        let by_base: HashMap<String, usize> = digests
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.path.file_name().map(|n| (n.to_string_lossy().into_owned(), i)))
            .collect();
        let mut chains: BTreeMap<&ChainKey, Vec<usize>> = BTreeMap::new();
        for (i, d) in digests.iter().enumerate() {
            // A backfill digest lists files delivered late; it is no link of the chain.
            if !d.name.backfill {
                chains.entry(&d.name.chain).or_default().push(i);
            }
        }
        for (key, mut members) in chains {
            members.sort_by(|&a, &b| (digests[a].end, &digests[a].path).cmp(&(digests[b].end, &digests[b].path)));
            let mut linked = HashSet::new();
            for (at, &i) in members.iter().enumerate() {
                let d = &digests[i];
                if let Some(&p) = d.previous.as_ref().and_then(|(key, _)| by_base.get(base(key))) {
                    linked.insert(p);
                }
                // A digest outside the window is there for the links of those inside it.
                if !d.in_scope {
                    continue;
                }
                let older = members.get(..at).unwrap_or_default();
                match &d.previous {
                    Some((key, recorded)) => match by_base.get(base(key)) {
                        Some(&p) if digests[p].hash == *recorded => {
                            self.result.digests.links_valid += 1;
                        }
                        Some(&p) => {
                            self.result.digests.modified += 1;
                            let detail = format!(
                                "SHA-256 of its content is {}; the next digest recorded {recorded}",
                                digests[p].hash
                            );
                            let problem = IntegrityProblem::new(IntegrityKind::DigestModified, detail);
                            self.problems
                                .push(problem.file(&digests[p].path).object(key).digest(&d.path));
                        }
                        None if !older.is_empty() => {
                            self.result.digests.missing += 1;
                            let detail = "named as the previous digest; not in the copy, which holds older digests of \
                                          its chain";
                            let problem = IntegrityProblem::new(IntegrityKind::DigestMissing, detail);
                            self.problems.push(problem.object(key).digest(&d.path));
                        }
                        // The oldest digest of the copy: its predecessor was not copied.
                        None => {}
                    },
                    None => {
                        if let Some(&last) = older.last() {
                            self.result.digests.gaps += 1;
                            let detail = "names no previous digest: no digest covers the time before it (logging or \
                                          log file validation was off)";
                            let problem = IntegrityProblem::new(IntegrityKind::DigestGap, detail);
                            self.problems
                                .push(problem.file(&d.path).span(digests[last].end, d.start));
                        }
                    }
                }
            }
            // A digest no later one names, though the next one names another the copy holds.
            for pair in members.windows(2) {
                let (i, next) = (pair[0], pair[1]);
                if !digests[i].in_scope {
                    continue;
                }
                let named = digests[next]
                    .previous
                    .as_ref()
                    .and_then(|(key, _)| by_base.get(base(key)));
                if !linked.contains(&i) && named.is_some_and(|&p| p != i) {
                    self.result.digests.unlinked += 1;
                    let detail = "no later digest names it; the next one names another digest in its place";
                    let problem = IntegrityProblem::new(IntegrityKind::DigestUnlinked, detail);
                    self.problems.push(
                        problem
                            .file(&digests[i].path)
                            .object(&digests[i].object)
                            .digest(&digests[next].path),
                    );
                }
            }
            members.retain(|&i| digests[i].in_scope);
            if let (Some(&first), Some(&last)) = (members.first(), members.last()) {
                self.result.chains.push(Chain {
                    account: key.account.clone(),
                    region: key.region.clone(),
                    trail: key.trail.clone(),
                    home_region: key.home_region.clone(),
                    digests: members.len() as u64,
                    from: digests[first].start,
                    to: digests[last].end,
                    newest: shown(&digests[last].path),
                    newest_signed: self.signed.contains(&digests[last].path),
                });
            }
        }
    }

    /// Hashes the log files the digests list (each local copy once, on every core) and compares;
    /// returns the names of the files listed.
    fn listed_logs<'d>(&mut self, files: &[(PathBuf, Kind)], digests: &'d [DigestFile]) -> HashSet<&'d str> {
        let mut local: HashMap<&str, Vec<&PathBuf>> = HashMap::new();
        for (path, kind) in files {
            if *kind != Kind::Digest
                && let Some(name) = path.file_name().and_then(|n| n.to_str())
            {
                local.entry(name).or_default().push(path);
            }
        }
        let mut wanted: Vec<&PathBuf> = digests
            .iter()
            .filter(|d| d.in_scope)
            .flat_map(|d| &d.logs)
            .filter_map(|l| local.get(base(&l.object)))
            .flatten()
            .copied()
            .collect();
        wanted.sort();
        wanted.dedup();
        let paths: Vec<&Path> = wanted.iter().map(|p| p.as_path()).collect();
        let hashes: HashMap<&PathBuf, Result<String, String>> =
            wanted.iter().copied().zip(self.store.log_hashes(&paths)).collect();
        let mut listed = HashSet::new();
        for d in digests.iter().filter(|d| d.in_scope) {
            for l in &d.logs {
                self.result.logs.listed += 1;
                listed.insert(base(&l.object));
                let Some(copies) = local.get(base(&l.object)) else {
                    self.result.logs.missing += 1;
                    let problem =
                        IntegrityProblem::new(IntegrityKind::LogMissing, "listed by its digest; not in the copy");
                    self.problems.push(problem.object(&l.object).digest(&d.path));
                    continue;
                };
                let mut worst: Option<IntegrityKind> = None;
                for &path in copies {
                    let (kind, detail) = match hashes.get(path) {
                        Some(Ok(hash)) if *hash == l.hash => continue,
                        Some(Ok(hash)) => (
                            IntegrityKind::LogModified,
                            format!("SHA-256 of its content is {hash}; its digest recorded {}", l.hash),
                        ),
                        Some(Err(e)) => (IntegrityKind::LogUnreadable, e.clone()),
                        None => (IntegrityKind::LogUnreadable, "not hashed".to_string()),
                    };
                    // A modified copy outweighs an unreadable one.
                    if worst != Some(IntegrityKind::LogModified) {
                        worst = Some(kind);
                    }
                    let problem = IntegrityProblem::new(kind, detail);
                    self.problems.push(problem.file(path).object(&l.object).digest(&d.path));
                }
                match worst {
                    None => self.result.logs.valid += 1,
                    Some(IntegrityKind::LogModified) => self.result.logs.modified += 1,
                    Some(_) => self.result.logs.unreadable += 1,
                }
            }
        }
        // A file listed by a digest outside the window is listed all the same.
        for d in digests.iter().filter(|d| !d.in_scope) {
            listed.extend(d.logs.iter().map(|l| base(&l.object)));
        }
        listed
    }

    /// CloudTrail log files delivered in time their account and region's digests cover, which
    /// no digest lists.
    fn unlisted_logs(&mut self, files: &[(PathBuf, Kind)], digests: &[DigestFile], listed: &HashSet<&str>) {
        let mut covered: HashMap<(&str, &str), Vec<Span>> = HashMap::new();
        // Every digest read tells what time is covered; the window picks the files judged.
        for d in digests.iter().filter(|d| !d.name.backfill) {
            covered
                .entry((&d.name.chain.account, &d.name.chain.region))
                .or_default()
                .push((d.start, d.end));
        }
        for spans in covered.values_mut() {
            *spans = merged(std::mem::take(spans));
        }
        let edge = Duration::minutes(EDGE_MINUTES);
        for (path, kind) in files {
            if *kind != Kind::Log {
                continue;
            }
            self.result.logs.local += 1;
            let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            if listed.contains(name.as_ref()) {
                continue;
            }
            let inside = match file_time(path) {
                FileTime::Delivered(at) if self.window.contains(at) => {
                    log_name(&name).and_then(|key| covered.get(&key)).and_then(|spans| {
                        spans
                            .iter()
                            .find(|(from, to)| later(*from, edge) < at && at < earlier(*to, edge))
                    })
                }
                _ => None,
            };
            match inside {
                Some(&(from, to)) => {
                    self.result.logs.unlisted += 1;
                    let detail = "delivered in time its account and region's digests cover; listed by none of them \
                                  (written afterwards, or by a trail without log file validation)";
                    self.problems.push(
                        IntegrityProblem::new(IntegrityKind::LogUnlisted, detail)
                            .file(path)
                            .span(from, to),
                    );
                }
                None => self.result.logs.not_covered += 1,
            }
        }
    }
}

/// A span of time, from and to.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// Time spans merged where they touch or overlap (a digest starts where the previous ended;
/// a minute's slack).
fn merged(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort();
    let mut out: Vec<Span> = Vec::new();
    for (from, to) in spans {
        match out.last_mut() {
            Some(last) if from <= later(last.1, Duration::minutes(1)) => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    const ACCOUNT: &str = "111122223333";
    const REGION: &str = "eu-west-1";

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("test fixture");
        encoder.finish().expect("test fixture")
    }

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    /// The tests' signing key, standing in for CloudTrail's.
    const SIGNING_KEY: &[u8] = include_bytes!("../../../tests/fixtures/digest-signing/test-key.pk8");

    fn signing_key() -> ring::signature::RsaKeyPair {
        ring::signature::RsaKeyPair::from_pkcs8(SIGNING_KEY).expect("test key")
    }

    /// CloudTrail's public keys as the tests' key stands for them.
    fn public_keys() -> PublicKeys {
        let mut keys = PublicKeys::default();
        keys.add("TESTFINGERPRINT", signing_key().public().as_ref().to_vec());
        keys
    }

    fn sign(message: &str) -> String {
        let pair = signing_key();
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            message.as_bytes(),
            &mut signature,
        )
        .expect("signed");
        hex(&signature)
    }

    /// A copy of a trail bucket being built: log files and a chain of hourly digests.
    struct Bucket {
        dir: tempfile::TempDir,
        /// Key and content hash of each digest written, oldest first.
        digests: Vec<(String, String)>,
        /// Each digest's signature, by key, as S3 keeps it.
        signatures: HashMap<String, String>,
    }

    /// The bucket itself rather than a copy: the files with their signatures, read from where
    /// they are.
    struct InBucket<'b> {
        bucket: &'b Bucket,
        copy: Copy,
    }

    impl InBucket<'_> {
        fn key(&self, path: &Path) -> String {
            let relative = path.strip_prefix(self.bucket.dir.path()).unwrap_or(path);
            relative.to_string_lossy().replace('\\', "/")
        }
    }

    impl Store for InBucket<'_> {
        fn digests(&self, paths: &[&Path]) -> Vec<Result<ReadDigest, String>> {
            let read = self.copy.digests(paths);
            paths
                .iter()
                .zip(read)
                .map(|(path, read)| {
                    let key = self.key(path);
                    read.map(|read| ReadDigest {
                        signature: self.bucket.signatures.get(&key).map(|hex| Signature {
                            hex: hex.clone(),
                            algorithm: "SHA256withRSA".into(),
                        }),
                        key: Some(key),
                        ..read
                    })
                })
                .collect()
        }

        fn log_hashes(&self, paths: &[&Path]) -> Vec<Result<String, String>> {
            self.copy.log_hashes(paths)
        }

        fn keeps_signatures(&self) -> bool {
            true
        }
    }

    impl Bucket {
        fn new() -> Bucket {
            Bucket {
                dir: tempfile::tempdir().expect("test fixture"),
                digests: Vec::new(),
                signatures: HashMap::new(),
            }
        }

        /// Checked where it is, signatures and all.
        fn verify_signed(&self, keys: Option<&PublicKeys>) -> Verification {
            let names: Vec<PathBuf> = walkdir::WalkDir::new(self.dir.path())
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .map(walkdir::DirEntry::into_path)
                .collect();
            let store = InBucket {
                bucket: self,
                copy: Copy {
                    prepared: HashMap::new(),
                },
            };
            verify_store(names, &store, keys, TimeWindow::default())
        }

        fn path(&self, key: &str) -> PathBuf {
            self.dir.path().join(key)
        }

        fn put(&self, key: &str, bytes: &[u8]) {
            let path = self.path(key);
            std::fs::create_dir_all(path.parent().expect("test fixture")).expect("test fixture");
            std::fs::write(path, bytes).expect("test fixture");
        }

        /// A log file delivered at `hhmm` on 2024-01-01; returns its key and content hash.
        fn log(&self, hhmm: &str, tag: &str) -> (String, String) {
            let key = format!(
                "AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/01/01/{ACCOUNT}_CloudTrail_{REGION}_20240101T{hhmm}Z_{tag}.json.gz"
            );
            let content = format!(r#"{{"Records":[{{"eventVersion":"1.09","eventName":"{tag}"}}]}}"#);
            self.put(&key, &gz(content.as_bytes()));
            (key, sha(content.as_bytes()))
        }

        /// The digest of hour `hour` (00:00 + hour to the next hour) listing `logs`, linked to
        /// the last digest written when `linked`.
        fn digest(&mut self, hour: u32, logs: &[(String, String)], linked: bool) -> String {
            self.digest_named(hour, logs, linked, 12, "")
        }

        /// [`Bucket::digest`] delivered at `seconds` past 5 minutes after the hour, its name
        /// ending with `suffix` (`_backfill`).
        fn digest_named(
            &mut self,
            hour: u32,
            logs: &[(String, String)],
            linked: bool,
            seconds: u32,
            suffix: &str,
        ) -> String {
            let key = format!(
                "AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/2024/01/01/{ACCOUNT}_CloudTrail-Digest_{REGION}_my_trail_us-east-1_20240101T{:02}05{seconds:02}Z{suffix}.json.gz",
                hour + 1
            );
            let previous = self.digests.last().filter(|_| linked);
            let previous_signature = previous.and_then(|p| self.signatures.get(&p.0));
            let end = format!("2024-01-01T{:02}:00:00Z", hour + 1);
            let document = serde_json::json!({
                "awsAccountId": ACCOUNT,
                "digestStartTime": format!("2024-01-01T{hour:02}:00:00Z"),
                "digestEndTime": end,
                "digestS3Bucket": "trail-bucket",
                "digestS3Object": key,
                "digestSignatureAlgorithm": "SHA256withRSA",
                "digestPublicKeyFingerprint": "testfingerprint",
                "previousDigestS3Bucket": previous.map(|_| "trail-bucket"),
                "previousDigestS3Object": previous.map(|p| &p.0),
                "previousDigestHashValue": previous.map(|p| &p.1),
                "previousDigestHashAlgorithm": previous.map(|_| "SHA-256"),
                "previousDigestSignature": previous_signature,
                "logFiles": logs.iter().map(|(k, h)| serde_json::json!({
                    "s3Bucket": "trail-bucket", "s3Object": k, "hashValue": h, "hashAlgorithm": "SHA-256"
                })).collect::<Vec<_>>(),
            });
            let content = serde_json::to_vec(&document).expect("test fixture");
            self.put(&key, &gz(&content));
            let message = format!(
                "{end}\ntrail-bucket/{key}\n{}\n{}",
                sha(&content),
                previous_signature.map_or("null", String::as_str)
            );
            self.signatures.insert(key.clone(), sign(&message));
            self.digests.push((key.clone(), sha(&content)));
            key
        }

        /// Three hours of logs (two files an hour) and their chained digests.
        fn three_hours() -> Bucket {
            let mut bucket = Bucket::new();
            for hour in 0..3 {
                let logs = [
                    bucket.log(&format!("{hour:02}10"), &format!("a{hour}")),
                    bucket.log(&format!("{hour:02}40"), &format!("b{hour}")),
                ];
                bucket.digest(hour, &logs, true);
            }
            bucket
        }

        fn verify(&self) -> Verification {
            self.verify_in(TimeWindow::default())
        }

        fn verify_in(&self, window: TimeWindow) -> Verification {
            let (result, errors) = verify(&[self.dir.path().to_path_buf()], window);
            assert!(errors.is_empty(), "{errors:?}");
            result
        }
    }

    fn kinds(result: &Verification) -> Vec<IntegrityKind> {
        result.problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn an_untouched_copy_is_clean() {
        let result = Bucket::three_hours().verify();
        assert!(result.clean(), "{:#?}", result.problems);
        assert_eq!(result.digests.found, 3);
        assert_eq!(result.digests.links_valid, 2);
        assert_eq!((result.logs.listed, result.logs.valid, result.logs.local), (6, 6, 6));
        assert_eq!(result.chains.len(), 1);
        let chain = &result.chains[0];
        assert_eq!(
            (chain.trail.as_str(), chain.home_region.as_str(), chain.digests),
            ("my_trail", "us-east-1", 3)
        );
        assert_eq!(chain.from.to_rfc3339(), "2024-01-01T00:00:00+00:00");
        assert_eq!(chain.to.to_rfc3339(), "2024-01-01T03:00:00+00:00");
        assert!(chain.newest.ends_with("20240101T030512Z.json.gz"));
    }

    #[test]
    fn a_log_file_changed_after_delivery_is_named_with_both_hashes() {
        let bucket = Bucket::three_hours();
        let (key, _) = bucket.log("0140", "b1");
        // Same name, another record: the file was rewritten.
        let forged = br#"{"Records":[{"eventVersion":"1.09","eventName":"DescribeInstances"}]}"#;
        bucket.put(&key, &gz(forged));
        let result = bucket.verify();
        assert_eq!(kinds(&result), [IntegrityKind::LogModified]);
        assert_eq!((result.logs.valid, result.logs.modified), (5, 1));
        let problem = &result.problems[0];
        assert!(problem.file.as_deref().expect("test fixture").ends_with("_b1.json.gz"));
        assert!(problem.detail.contains(&sha(forged)), "{}", problem.detail);
        assert!(
            problem
                .digest
                .as_deref()
                .expect("test fixture")
                .ends_with("20240101T020512Z.json.gz")
        );
        // Recompressing the same content (another gzip level, or gunzipped) changes nothing.
        let (key, _) = bucket.log("0010", "a0");
        let content = br#"{"Records":[{"eventVersion":"1.09","eventName":"a0"}]}"#;
        bucket.put(&key, content);
        assert_eq!(kinds(&bucket.verify()), [IntegrityKind::LogModified]);
    }

    #[test]
    fn a_deleted_log_file_is_missing() {
        let bucket = Bucket::three_hours();
        let (key, _) = bucket.log("0210", "a2");
        std::fs::remove_file(bucket.path(&key)).expect("test fixture");
        let result = bucket.verify();
        assert_eq!(kinds(&result), [IntegrityKind::LogMissing]);
        assert_eq!(result.problems[0].object.as_deref(), Some(key.as_str()));
        assert_eq!((result.logs.listed, result.logs.missing, result.logs.local), (6, 1, 5));
    }

    #[test]
    fn a_log_file_added_in_covered_time_is_unlisted_but_not_at_the_edges() {
        let bucket = Bucket::three_hours();
        bucket.log("0125", "injected");
        // Within half an hour of the ends of what the digests cover: not judged.
        bucket.log("0015", "early");
        bucket.log("0245", "late");
        bucket.log("0400", "after");
        let result = bucket.verify();
        assert_eq!(kinds(&result), [IntegrityKind::LogUnlisted]);
        assert!(
            result.problems[0]
                .file
                .as_deref()
                .expect("test fixture")
                .ends_with("_injected.json.gz")
        );
        assert_eq!(
            (result.logs.unlisted, result.logs.not_covered, result.logs.local),
            (1, 3, 10)
        );
    }

    #[test]
    fn a_changed_digest_is_caught_by_the_next_one() {
        let mut bucket = Bucket::three_hours();
        // Hour 1's digest rewritten to list a forged file: its hash no longer matches hour 2's link.
        let forged = bucket.log("0150", "forged");
        let logs = [bucket.log("0110", "a1"), bucket.log("0140", "b1"), forged];
        let saved = bucket.digests.clone();
        bucket.digests.truncate(1);
        bucket.digest(1, &logs, true);
        bucket.digests = saved;
        let result = bucket.verify();
        assert_eq!(kinds(&result), [IntegrityKind::DigestModified]);
        let problem = &result.problems[0];
        assert!(
            problem
                .file
                .as_deref()
                .expect("test fixture")
                .ends_with("20240101T020512Z.json.gz")
        );
        assert!(
            problem
                .digest
                .as_deref()
                .expect("test fixture")
                .ends_with("20240101T030512Z.json.gz")
        );
        assert_eq!((result.digests.links_valid, result.digests.modified), (1, 1));
    }

    #[test]
    fn a_deleted_digest_is_missing_unless_it_is_before_the_copy() {
        let bucket = Bucket::three_hours();
        std::fs::remove_file(bucket.path(&bucket.digests[1].0)).expect("test fixture");
        let result = bucket.verify();
        // The logs it listed are in time no digest of the copy covers: not judged.
        assert_eq!(kinds(&result), [IntegrityKind::DigestMissing]);
        assert_eq!(result.problems[0].object.as_deref(), Some(bucket.digests[1].0.as_str()));
        assert_eq!((result.logs.listed, result.logs.not_covered), (4, 2));
        // The oldest digest gone: the copy starts later, nothing is wrong.
        let bucket = Bucket::three_hours();
        std::fs::remove_file(bucket.path(&bucket.digests[0].0)).expect("test fixture");
        let result = bucket.verify();
        assert!(result.clean(), "{:#?}", result.problems);
        assert_eq!((result.digests.found, result.digests.links_valid), (2, 1));
    }

    #[test]
    fn a_chain_that_restarts_is_a_gap() {
        let mut bucket = Bucket::new();
        let logs = [bucket.log("0010", "a0")];
        bucket.digest(0, &logs, true);
        // Logging stopped for hours 1 to 3, then the chain starts again.
        let logs = [bucket.log("0410", "a4")];
        bucket.digest(4, &logs, false);
        let result = bucket.verify();
        assert_eq!(kinds(&result), [IntegrityKind::DigestGap]);
        let problem = &result.problems[0];
        assert_eq!(
            problem.from.expect("test fixture").to_rfc3339(),
            "2024-01-01T01:00:00+00:00"
        );
        assert_eq!(
            problem.to.expect("test fixture").to_rfc3339(),
            "2024-01-01T04:00:00+00:00"
        );
        assert_eq!(result.digests.gaps, 1);
    }

    #[test]
    fn a_digest_put_in_place_of_another_is_unlinked() {
        let mut bucket = Bucket::three_hours();
        // A second digest for hour 1, chained to hour 0 but named by nothing later.
        let logs = [bucket.log("0150", "forged")];
        bucket.digests.truncate(1);
        bucket.digest_named(1, &logs, true, 13, "");
        let result = bucket.verify();
        assert_eq!(kinds(&result), [IntegrityKind::DigestUnlinked]);
        assert!(
            result.problems[0]
                .file
                .as_deref()
                .expect("test fixture")
                .ends_with("T020513Z.json.gz")
        );
        // The copy of a digest under another name is moved.
        let bucket = Bucket::three_hours();
        let moved = bucket.digests[1].0.replace("T020512Z", "T020514Z");
        std::fs::rename(bucket.path(&bucket.digests[1].0), bucket.path(&moved)).expect("test fixture");
        let result = bucket.verify();
        assert_eq!(
            kinds(&result),
            [IntegrityKind::DigestMissing, IntegrityKind::DigestMoved]
        );
    }

    #[test]
    fn unreadable_and_hostile_digests_are_named_and_the_rest_checked() {
        let bucket = Bucket::three_hours();
        let dir = format!("AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/2024/01/02");
        let name = |n: u32| format!("{dir}/{ACCOUNT}_CloudTrail-Digest_{REGION}_t_{REGION}_20240102T0{n}0000Z.json.gz");
        let hostile: [&[u8]; 7] = [
            b"\x1f\x8b\x08\x00junk",
            b"not json",
            b"[1,2]",
            br#"{"digestS3Object":"x","digestStartTime":"2024-01-02T00:00:00Z","digestEndTime":"2024-01-02T01:00:00Z","logFiles":{"a":1}}"#,
            br#"{"digestS3Object":"x","digestStartTime":"2024-01-02T00:00:00Z","digestEndTime":"2024-01-02T01:00:00Z","logFiles":[{"s3Object":"k","hashValue":7}]}"#,
            br#"{"digestS3Object":"x","digestStartTime":"+262143-01-01T00:00:00Z","digestEndTime":"yesterday"}"#,
            br#"{"digestS3Object":"x","digestStartTime":"2024-01-02T00:00:00Z","digestEndTime":"2024-01-02T01:00:00Z","previousDigestS3Object":"y"}"#,
        ];
        for (n, bytes) in hostile.iter().enumerate() {
            bucket.put(&name(n as u32), bytes);
        }
        bucket.put(&format!("{dir}/not-a-digest_CloudTrail-Digest_.json"), b"{}");
        let result = bucket.verify();
        assert_eq!(result.digests.unreadable, 8, "{:#?}", result.problems);
        assert_eq!(result.logs.valid, 6);
        let details: Vec<&str> = result.problems.iter().map(|p| p.detail.as_str()).collect();
        for expected in [
            "inflate",
            "not JSON",
            "not a JSON object",
            "`logFiles` is not a list",
            "`hashValue` is not a string",
            "not a time",
            "no `previousDigestHashValue`",
            "not a digest file name",
        ] {
            assert!(details.iter().any(|d| d.contains(expected)), "{expected}: {details:#?}");
        }
    }

    #[test]
    fn extreme_digest_times_do_not_overflow() {
        let mut bucket = Bucket::new();
        bucket.log("0110", "a");
        let key = format!(
            "AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/2024/01/01/{ACCOUNT}_CloudTrail-Digest_{REGION}_t_{REGION}_20240101T010000Z.json.gz"
        );
        let document = serde_json::json!({
            "digestS3Object": key, "digestStartTime": "-262143-01-01T00:00:00Z",
            "digestEndTime": "+262142-12-31T23:59:59Z", "logFiles": [],
        });
        bucket.put(&key, &serde_json::to_vec(&document).expect("test fixture"));
        bucket.digests.clear();
        let result = bucket.verify();
        assert_eq!(
            result.digests.unreadable + result.logs.unlisted,
            1,
            "{:#?}",
            result.problems
        );
    }

    #[test]
    fn a_window_judges_the_digests_of_its_hours_and_the_files_delivered_in_it() {
        let bucket = Bucket::three_hours();
        // Hour 0's log deleted, hour 2's changed, a file put in hour 1.
        std::fs::remove_file(bucket.path(&bucket.log("0010", "a0").0)).expect("delete");
        let (key, _) = bucket.log("0240", "b2");
        bucket.put(&key, &gz(b"{}"));
        bucket.log("0125", "injected");
        // Delivered in the window, listed by a digest outside it (a backfill): listed.
        let late = bucket.log("0158", "late");
        let mut bucket = bucket;
        let logs = [late];
        bucket.digest_named(2, &logs, false, 30, "_backfill");
        let at = |t: &str| parse_event_time(t).expect("time");
        let window =
            TimeWindow::new(Some(at("2024-01-01T01:00:00Z")), Some(at("2024-01-01T02:00:00Z"))).expect("window");
        let result = bucket.verify_in(window);
        // Hour 1 only: its link to hour 0 is checked, hour 0 and 2 are not judged.
        assert_eq!(kinds(&result), [IntegrityKind::LogUnlisted]);
        assert_eq!(
            (
                result.digests.found,
                result.digests.outside_window,
                result.digests.links_valid
            ),
            (4, 3, 1)
        );
        assert_eq!((result.logs.listed, result.logs.valid), (2, 2));
        assert_eq!((result.chains.len(), result.chains[0].digests), (1, 1));
        // Unbounded, all three are named.
        let kinds_all = kinds(&bucket.verify());
        assert_eq!(
            kinds_all,
            [
                IntegrityKind::LogModified,
                IntegrityKind::LogMissing,
                IntegrityKind::LogUnlisted
            ]
        );
    }

    /// Every file under `dir`, as (path relative to it, bytes).
    fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| e.expect("walk"))
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .expect("under")
                    .to_string_lossy()
                    .into_owned();
                (rel, std::fs::read(e.path()).expect("read"))
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn a_copy_handed_over_as_an_archive_is_checked_entry_by_entry() {
        let bucket = Bucket::three_hours();
        let (key, _) = bucket.log("0140", "b1");
        bucket.put(&key, &gz(b"{}"));
        std::fs::remove_file(bucket.path(&bucket.log("0210", "a2").0)).expect("delete");
        let files = files_of(bucket.dir.path());
        let out = tempfile::tempdir().expect("tmp");
        // zip
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (path, data) in &files {
            writer.start_file(path.as_str(), options).expect("entry");
            writer.write_all(data).expect("write");
        }
        std::fs::write(
            out.path().join("evidence.zip"),
            writer.finish().expect("zip").into_inner(),
        )
        .expect("write");
        // tar.gz
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in &files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, data.as_slice()).expect("append");
        }
        std::fs::write(
            out.path().join("evidence.tar.gz"),
            gz(&builder.into_inner().expect("tar")),
        )
        .expect("write");
        for archive in ["evidence.zip", "evidence.tar.gz"] {
            let (result, errors) = verify(&[out.path().join(archive)], TimeWindow::default());
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(
                kinds(&result),
                [IntegrityKind::LogModified, IntegrityKind::LogMissing],
                "{archive}"
            );
            let file = result.problems[0].file.as_deref().expect("file");
            assert!(
                file.contains(&format!("{archive}!/AWSLogs/")) && file.ends_with("_b1.json.gz"),
                "{file}"
            );
            assert_eq!(
                (result.digests.found, result.digests.links_valid, result.logs.valid),
                (3, 2, 4)
            );
        }
        // A broken archive is named; what came before the break is checked.
        let zip = std::fs::read(out.path().join("evidence.zip")).expect("read");
        std::fs::write(out.path().join("evidence.zip"), &zip[..zip.len() / 2]).expect("write");
        let (result, errors) = verify(&[out.path().join("evidence.zip")], TimeWindow::default());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("evidence.zip"), "{errors:?}");
        assert_eq!(result.digests.found, 0);
    }

    #[test]
    fn two_copies_of_the_bucket_are_checked_as_one() {
        let bucket = Bucket::three_hours();
        let copy = tempfile::tempdir().expect("tmp");
        for (path, data) in files_of(bucket.dir.path()) {
            let target = copy.path().join(path);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            std::fs::write(target, data).expect("write");
        }
        let (result, errors) = verify(
            &[bucket.dir.path().to_path_buf(), copy.path().to_path_buf()],
            TimeWindow::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(result.clean(), "{:#?}", result.problems);
        assert_eq!((result.digests.found, result.digests.links_valid), (6, 2));
        // Each copy of a listed file is checked: one changed copy is named.
        let (key, _) = bucket.log("0140", "b1");
        std::fs::write(copy.path().join(&key), gz(b"{}")).expect("write");
        let (result, _) = verify(
            &[bucket.dir.path().to_path_buf(), copy.path().to_path_buf()],
            TimeWindow::default(),
        );
        assert_eq!(kinds(&result), [IntegrityKind::LogModified]);
        assert!(
            result.problems[0]
                .file
                .as_deref()
                .expect("file")
                .starts_with(&copy.path().display().to_string())
        );
    }

    #[test]
    fn signatures_are_checked_when_read_from_the_bucket() {
        let bucket = Bucket::three_hours();
        let keys = public_keys();
        let result = bucket.verify_signed(Some(&keys));
        assert!(result.clean(), "{:#?}", result.problems);
        assert_eq!(
            (result.digests.signatures_valid, result.digests.signatures_unchecked),
            (3, 0)
        );
        assert!(result.chains[0].newest_signed);
        assert_eq!(result.signatures_unchecked_because, None);
        // A copy keeps none: said, and nothing is vouched for.
        let copy = bucket.verify();
        assert_eq!(copy.digests.signatures_unchecked, 3);
        assert!(
            copy.signatures_unchecked_because
                .is_some_and(|why| why.contains("a copy"))
        );
        assert!(!copy.chains[0].newest_signed);
        // Read from the bucket without CloudTrail's keys: not checked, and said why.
        let keyless = bucket.verify_signed(None);
        assert!(keyless.clean());
        assert_eq!(keyless.digests.signatures_unchecked, 3);
        assert!(
            keyless
                .signatures_unchecked_because
                .is_some_and(|why| why.contains("public keys"))
        );
    }

    #[test]
    fn the_newest_digest_rewritten_with_its_logs_fails_its_signature() {
        // Who can write to the bucket changes a log file and rewrites the newest digest to
        // list the new hash: every hash and link holds, only the signature tells.
        let mut bucket = Bucket::new();
        let first = [bucket.log("0010", "a0")];
        bucket.digest(0, &first, true);
        let second = [bucket.log("0110", "a1")];
        let newest = bucket.digest(1, &second, true);
        let forged = r#"{"Records":[{"eventVersion":"1.09","eventName":"Nothing"}]}"#;
        bucket.put(&second[0].0, &gz(forged.as_bytes()));
        let path = bucket.path(&newest);
        let mut digest: serde_json::Value = {
            let mut text = Vec::new();
            inflated(&path, DIGEST_MAX_BYTES, |chunk| text.extend_from_slice(chunk)).expect("digest");
            serde_json::from_slice(&text).expect("digest JSON")
        };
        digest["logFiles"][0]["hashValue"] = serde_json::Value::String(sha(forged.as_bytes()));
        bucket.put(&newest, &gz(&serde_json::to_vec(&digest).expect("JSON")));
        // A copy sees nothing wrong.
        assert!(bucket.verify().clean());
        let keys = public_keys();
        let result = bucket.verify_signed(Some(&keys));
        assert_eq!(kinds(&result), [IntegrityKind::DigestSignatureInvalid]);
        assert!(result.problems[0].file.as_deref().is_some_and(|f| f.ends_with(&newest)));
        assert!(result.problems[0].detail.contains("does not verify"));
        assert_eq!(
            (result.digests.signatures_valid, result.digests.signatures_invalid),
            (1, 1)
        );
        assert!(!result.chains[0].newest_signed);
    }

    #[test]
    fn unsigned_digests_foreign_keys_and_moved_digests_are_named() {
        let mut bucket = Bucket::three_hours();
        let keys = public_keys();
        // One digest without its signature.
        let (oldest, _) = bucket.digests[0].clone();
        bucket.signatures.remove(&oldest);
        let result = bucket.verify_signed(Some(&keys));
        assert_eq!(kinds(&result), [IntegrityKind::DigestUnsigned]);
        assert_eq!(result.digests.unsigned, 1);
        // Keys that are not the signer's: every signature is invalid, naming the fingerprint.
        let mut other = PublicKeys::default();
        other.add("otherfingerprint", vec![1, 2, 3]);
        let result = bucket.verify_signed(Some(&other));
        assert_eq!(result.digests.signatures_invalid, 2);
        assert!(result.problems.iter().any(|p| {
            p.detail
                .contains("(fingerprint \"testfingerprint\") is none of CloudTrail's public keys")
        }));
        // A signed digest copied under another folder of the bucket: its own signature holds,
        // its place does not.
        let (newest, _) = bucket.digests[2].clone();
        let moved = newest.replace("/2024/01/01/", "/2024/01/02/");
        bucket.put(&moved, &std::fs::read(bucket.path(&newest)).expect("digest"));
        let signature = bucket.signatures.get(&newest).cloned().expect("signed");
        bucket.signatures.insert(moved.clone(), signature);
        let result = bucket.verify_signed(Some(&keys));
        let moved_problem = result
            .problems
            .iter()
            .find(|p| p.kind == IntegrityKind::DigestMoved)
            .expect("moved");
        assert!(moved_problem.file.as_deref().is_some_and(|f| f.ends_with(&moved)));
    }

    #[test]
    fn public_keys_are_read_from_what_the_cli_prints() {
        let mut keys = PublicKeys::default();
        let text = r#"{"PublicKeyList": [{"Value": "AQID", "ValidityStartTime": "2024-01-01T00:00:00Z",
            "ValidityEndTime": "2024-02-01T00:00:00Z", "Fingerprint": "AbCd"}]}"#;
        assert_eq!(keys.add_cli_json(text), Ok(1));
        assert_eq!(keys.by_fingerprint.get("abcd"), Some(&vec![1, 2, 3]));
        assert!(keys.add_cli_json("{}").is_err());
        let bad = r#"{"PublicKeyList": [{"Value": "not base64!", "Fingerprint": "x"}]}"#;
        assert!(keys.add_cli_json(bad).is_err_and(|e| e.contains("PublicKeyList[0]")));
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn inflating_stops_at_the_limit() {
        let dir = tempfile::tempdir().expect("test fixture");
        let path = dir.path().join("bomb.json.gz");
        std::fs::write(&path, gz(&vec![b' '; 10 << 20])).expect("test fixture");
        let err = inflated(&path, 1 << 20, |_| {}).expect_err("over the limit");
        assert!(err.contains("larger than 1048576 bytes"), "{err}");
        assert_eq!(inflated(&path, 20 << 20, |_| {}), Ok(10 << 20));
    }

    #[test]
    fn digest_names_are_read_as_cloudtrail_writes_them() {
        let name =
            digest_name("111122223333_CloudTrail-Digest_eu-west-1_my_org_trail_us-east-1_20240101T010512Z.json.gz")
                .expect("test fixture");
        assert_eq!(name.chain.trail, "my_org_trail");
        assert_eq!(
            (name.chain.region.as_str(), name.chain.home_region.as_str()),
            ("eu-west-1", "us-east-1")
        );
        assert!(!name.backfill);
        let backfill =
            digest_name("111122223333_CloudTrail-Digest_eu-west-1_t_us-east-1_20240101T010512Z_backfill.json.gz")
                .expect("test fixture");
        assert!(backfill.backfill);
        for bad in [
            "111122223333_CloudTrail-Digest_eu-west-1_us-east-1_20240101T010512Z.json.gz",
            "111122223333_CloudTrail-Digest_eu-west-1_t_us-east-1_2024.json.gz",
            "_CloudTrail-Digest_eu-west-1_t_us-east-1_20240101T010512Z.json.gz",
            "111122223333_CloudTrail-Digest_eu-west-1_t_us-east-1_20240101T010512Z.txt",
        ] {
            assert_eq!(digest_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_backfill_digest_lists_late_files_without_joining_the_chain() {
        let mut bucket = Bucket::three_hours();
        let late = bucket.log("0120", "late");
        let saved = bucket.digests.clone();
        bucket.digest_named(1, &[late], false, 12, "_backfill");
        bucket.digests = saved;
        let result = bucket.verify();
        assert!(result.clean(), "{:#?}", result.problems);
        assert_eq!(
            (result.digests.found, result.logs.valid, result.digests.gaps),
            (4, 7, 0)
        );
    }
}
