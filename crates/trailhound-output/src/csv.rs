//! CSV: a header row and one row per finding, every cell one line, with nothing hidden, and
//! formula-safe.

use std::io::{self, Write};

use trailhound_finding::Finding;

use crate::escape::{csv_cell, json_text};

pub(crate) fn write(out: &mut dyn Write, findings: &[Finding]) -> io::Result<()> {
    let with_event = findings.iter().any(|f| f.event.is_some());
    let mut writer = ::csv::Writer::from_writer(out);
    let mut columns = Finding::FIELDS.to_vec();
    if with_event {
        columns.push("event");
    }
    writer.write_record(&columns)?;
    for f in findings {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut row = vec![
            f.rule_id.clone(),
            f.rule_title.clone(),
            f.level.to_string(),
            f.tags.join(" "),
            opt(&f.event_id),
            f.event_time.clone(),
            f.event_name.clone(),
            f.event_source.clone(),
            opt(&f.aws_region),
            opt(&f.account_id),
            opt(&f.principal_arn),
            opt(&f.principal_type),
            opt(&f.access_key_id),
            opt(&f.source_ip),
            opt(&f.user_agent),
            opt(&f.error_code),
            f.source_file.clone(),
        ];
        if with_event {
            row.iter_mut().for_each(|cell| *cell = csv_cell(cell).into_owned());
            // The record stays JSON: its hidden characters escaped the JSON way.
            row.push(
                f.event
                    .as_ref()
                    .map(|e| json_text(e.get()).into_owned())
                    .unwrap_or_default(),
            );
        } else {
            row.iter_mut().for_each(|cell| *cell = csv_cell(cell).into_owned());
        }
        writer.write_record(&row)?;
    }
    writer.flush()
}
