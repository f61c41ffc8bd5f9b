//! What the fuzz targets share: the size limit, field lookups as rules make them, the stream scan,
//! and sample records for rules to be evaluated on.

use std::sync::LazyLock;

use trailhound_event::{FieldPath, Record, printable};
use trailhound_source::{ProblemBudget, ScanOptions, ScanStats, Sink, scan_stream, scan_stream_in_blocks};

/// The inflated-size limit the targets decode with (the CLI's default is 1 GiB; a smaller one
/// keeps bombs within libFuzzer's memory limit and the runs fast).
pub const LIMIT: u64 = 8 << 20;

/// Paths rules and `--where` look up: core fields, nested parameters, arrays, indexes, odd keys.
const PATHS: &[&str] = &[
    "eventName",
    "eventSource",
    "eventTime",
    "errorCode",
    "errorMessage",
    "userIdentity.arn",
    "userIdentity.type",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.sessionContext.attributes.mfaAuthenticated",
    "sessionCredentialFromConsole",
    "readOnly",
    "requestParameters",
    "requestParameters.ipPermissions.items.ipRanges.items.cidrIp",
    "requestParameters.ipPermissions.items.0.fromPort",
    "requestParameters.policyDocument",
    "responseElements.ConsoleLogin",
    "additionalEventData.MFAUsed",
    "resources.ARN",
    "resources.0.type",
    "tlsDetails.tlsVersion",
    "a..b",
    "",
    "\"",
];

static FIELD_PATHS: LazyLock<Vec<FieldPath>> = LazyLock::new(|| PATHS.iter().map(|p| FieldPath::new(p)).collect());

/// Looks every path of [`PATHS`] up in `record`, reading each value as matchers read it, and
/// escapes what it finds for a terminal.
pub fn look_up(record: &Record<'_>) {
    for path in FIELD_PATHS.iter() {
        record.visit(path, &mut |value| {
            let _ = value.number();
            if let Some(text) = value.text() {
                let _ = printable(&text);
            }
            false
        });
        let _ = trailhound_event::query::first_text(record, path);
    }
    let _ = record.account_id();
    let _ = printable(record.raw());
}

/// Counts the records a scan hands on, looking each one up.
struct Looking(u64);

impl Sink for Looking {
    fn record(&mut self, _source: &str, record: &Record<'_>) {
        self.0 += 1;
        look_up(record);
    }
}

/// Scans `data` as standard input is scanned: a stream of top-level values (gzip or not).
pub fn scan_as_stream(data: &[u8]) {
    let options = ScanOptions {
        max_file_bytes: LIMIT,
        ..ScanOptions::default()
    };
    let one = scan_stream(data, "stdin", &options, Looking(0), &ProblemBudget::default());
    let seen: u64 = one.sinks.iter().map(|s| s.0).sum();
    std::hint::black_box((seen, &one.stats, one.problems_total));
    // Again with a limit so small that every array and envelope is read element by element.
    let tiny = ScanOptions {
        max_file_bytes: 64,
        ..ScanOptions::default()
    };
    let report = scan_stream(data, "stdin", &tiny, Looking(0), &ProblemBudget::default());
    std::hint::black_box((report.stats, report.problems_total));
    // Split over two threads in blocks of a few values: the same counts and problems.
    let split = POOL.install(|| {
        scan_stream_in_blocks(data, "stdin", &options, &|| Looking(0), &ProblemBudget::default(), 64)
    });
    let split_seen: u64 = split.sinks.iter().map(|s| s.0).sum();
    assert_eq!(
        (split_seen, timeless(split.stats), split.problems_total),
        (seen, timeless(one.stats), one.problems_total),
        "a stream split over cores read differently"
    );
}

/// Two threads for the split stream scan, made once.
static POOL: LazyLock<rayon::ThreadPool> = LazyLock::new(|| {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap_or_else(|err| panic!("no thread pool: {err}"))
});

fn timeless(mut stats: ScanStats) -> ScanStats {
    stats.elapsed = std::time::Duration::ZERO;
    stats
}

/// Real records (from the Stratus Red Team detonation logs and the AWS user guide), one a line,
/// for rules under test to be evaluated on.
pub const SAMPLE_RECORDS: &str = include_str!("../data/records.jsonl");

/// [`SAMPLE_RECORDS`], parsed.
pub fn sample_records() -> Vec<Record<'static>> {
    SAMPLE_RECORDS
        .lines()
        .filter_map(|line| Record::parse(line).ok())
        .collect()
}

/// Scans `data` as an archive of logs, once named as each kind (zip, tar, tar.gz), the way a
/// folder's archive is read: through a file in a temporary folder of this process.
pub fn scan_as_archive(data: &[u8]) {
    static DIR: LazyLock<std::path::PathBuf> = LazyLock::new(|| {
        let dir = std::env::temp_dir().join(format!("trailhound-fuzz-archives-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    });
    let options = ScanOptions {
        max_file_bytes: LIMIT,
        ..ScanOptions::default()
    };
    for name in ["logs.zip", "logs.tar", "logs.tar.gz"] {
        let path = DIR.join(name);
        if std::fs::write(&path, data).is_err() {
            continue;
        }
        let plan = trailhound_source::Plan::new(&[trailhound_source::Input::Path(path.clone())], &options);
        let report = trailhound_source::scan_part(plan, &options, &|| Looking(0), &|_| {}, &ProblemBudget::default());
        let seen: u64 = report.sinks.iter().map(|s| s.0).sum();
        std::hint::black_box((seen, &report.stats, report.problems_total));
        let _ = std::fs::remove_file(&path);
    }
}
