//! Stored findings (`trailhound findings list`): the finding plus its triage state.

use std::io::{self, Write};

use trailhound_finding::StoredFinding;

use crate::escape::{terminal, write_json};

/// `json` (one array), `jsonl`, or a table.
pub fn write_stored(out: &mut dyn Write, format: &str, findings: &[StoredFinding]) -> io::Result<()> {
    match format {
        "json" => {
            write_json(out, findings, true)?;
            writeln!(out)
        }
        "jsonl" => {
            for finding in findings {
                write_json(out, finding, false)?;
                writeln!(out)?;
            }
            Ok(())
        }
        _ => table(out, findings),
    }
}

fn table(out: &mut dyn Write, findings: &[StoredFinding]) -> io::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let field = |f: &StoredFinding, key: &str| {
        terminal(f.finding.get(key).and_then(|v| v.as_str()).unwrap_or("-")).into_owned()
    };
    let rows: Vec<[String; 8]> = findings
        .iter()
        .map(|f| {
            let note = match (&f.reason, &f.ticket) {
                (Some(reason), Some(ticket)) => format!("{} ({})", terminal(reason), terminal(ticket)),
                (Some(reason), None) => terminal(reason).into_owned(),
                (None, Some(ticket)) => terminal(ticket).into_owned(),
                (None, None) => String::new(),
            };
            [
                f.id.to_string(),
                f.status.as_str().to_string(),
                field(f, "level"),
                field(f, "rule_id"),
                field(f, "event_time"),
                field(f, "principal_arn"),
                f.times_seen.to_string(),
                note,
            ]
        })
        .collect();
    let header = [
        "ID",
        "STATUS",
        "LEVEL",
        "RULE",
        "EVENT TIME",
        "PRINCIPAL",
        "SEEN",
        "REASON",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(&header.map(String::from)))?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}
