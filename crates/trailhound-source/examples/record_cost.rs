//! Measures what one large record costs to read and look up: run it under `/usr/bin/time -v`.
//!
//! `cargo run --release -p trailhound-source --example record_cost -- FILE` scans FILE (or `-` for
//! stdin) and looks up, in every record, one leaf deep inside `requestParameters` and the
//! `requestParameters` object as a whole (matched as its JSON text), as rules do. Make a record
//! with `--generate MB FILE`: one CloudTrail record whose `requestParameters` holds MB megabytes
//! of small objects.

use std::io::Write;

use trailhound_event::{FieldPath, Record};
use trailhound_source::{Input, Plan, ProblemBudget, ScanOptions, Sink, scan_part};

struct Lookups {
    leaf: FieldPath,
    whole: FieldPath,
    leaves: u64,
    text_bytes: u64,
}

impl Sink for Lookups {
    fn record(&mut self, _: &str, record: &Record<'_>) {
        record.visit(&self.leaf, &mut |value| {
            self.leaves += 1;
            value.text().is_some_and(|t| t == "never")
        });
        record.visit(&self.whole, &mut |value| {
            self.text_bytes += value.text().map_or(0, |t| t.len() as u64);
            false
        });
    }
}

fn generate(megabytes: usize, path: &str) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(br#"{"eventVersion":"1.08","eventTime":"2024-03-01T12:00:00Z","eventName":"PutBucketPolicy","eventSource":"s3.amazonaws.com","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/bob"},"requestParameters":{"items":["#)?;
    let mut written = 0;
    let mut i = 0u64;
    while written < megabytes << 20 {
        let item = format!(
            r#"{}{{"name":"n{i}","cidrIp":"10.0.{}.0/24","port":{}}}"#,
            if i > 0 { "," } else { "" },
            i % 256,
            i % 65536
        );
        written += item.len();
        out.write_all(item.as_bytes())?;
        i += 1;
    }
    out.write_all(b"]}}\n")?;
    out.flush()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, megabytes, path] = &args[..]
        && flag == "--generate"
    {
        let megabytes = megabytes.parse().unwrap_or(1);
        if let Err(err) = generate(megabytes, path) {
            eprintln!("{path}: {err}");
        }
        return;
    }
    let Some(path) = args.first() else {
        eprintln!("usage: record_cost FILE | record_cost --generate MB FILE");
        return;
    };
    let options = ScanOptions {
        max_file_bytes: 4 << 30,
        ..ScanOptions::default()
    };
    let input = Input::parse(path).unwrap_or(Input::Stdin);
    let plan = Plan::new(&[input], &options);
    let make = || Lookups {
        leaf: FieldPath::new("requestParameters.items.name"),
        whole: FieldPath::new("requestParameters"),
        leaves: 0,
        text_bytes: 0,
    };
    let report = scan_part(plan, &options, &make, &|_| {}, &ProblemBudget::default());
    let leaves: u64 = report.sinks.iter().map(|s| s.leaves).sum();
    let text: u64 = report.sinks.iter().map(|s| s.text_bytes).sum();
    println!(
        "records {} invalid {} leaves visited {leaves} object text {text} bytes",
        report.stats.records_read, report.stats.records_invalid
    );
}
