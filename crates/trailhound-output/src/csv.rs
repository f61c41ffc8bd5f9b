//! CSV: a header row and one row per finding, every cell one line, with nothing hidden, and
//! formula-safe.

use std::io::{self, Write};

use trailhound_event::{DerivedField, DerivedValue};
use trailhound_finding::Finding;

use crate::escape::{csv_cell, json_text};

/// Derived fields written as CSV columns after the contract fields, when a hunt derived them.
const CONTEXT_COLUMNS: [(&str, DerivedField); 9] = [
    ("src_network", DerivedField::SrcNetwork),
    ("src_aws", DerivedField::SrcAws),
    ("src_aws_service", DerivedField::SrcAwsService),
    ("src_asn", DerivedField::SrcAsn),
    ("src_as_org", DerivedField::SrcAsOrg),
    ("src_country", DerivedField::SrcCountry),
    ("principal_kind", DerivedField::PrincipalKind),
    ("principal_by_aws", DerivedField::PrincipalByAws),
    ("baseline_normal", DerivedField::BaselineNormal),
];

pub(crate) fn write(out: &mut dyn Write, findings: &[Finding]) -> io::Result<()> {
    let with_event = findings.iter().any(|f| f.event.is_some());
    let mut writer = ::csv::Writer::from_writer(out);
    let mut columns = Finding::FIELDS.to_vec();
    // The derived fields people slice on, after the contract fields.
    let with_context = findings.iter().any(|f| f.context.is_some());
    if with_context {
        columns.extend(CONTEXT_COLUMNS.iter().map(|(name, _)| *name));
    }
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
        if with_context {
            for (_, field) in CONTEXT_COLUMNS {
                let value = f
                    .context
                    .as_deref()
                    .and_then(|d| d.get(field))
                    .map(DerivedValue::to_string)
                    .unwrap_or_default();
                row.push(value);
            }
        }
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
