//! Stored findings (`trailhound findings list`): the finding plus its triage state.

use std::io::{self, Write};

use trailhound_finding::StoredFinding;

use crate::escape::{terminal, write_json};

/// `json` (one array), `jsonl`, or a table.
pub fn write_stored(out: &mut dyn Write, format: &str, findings: &[StoredFinding]) -> io::Result<()> {
    let mut writer = StoredWriter::new(format);
    for finding in findings {
        writer.push(out, finding)?;
    }
    writer.finish(out)
}

/// [`write_stored`] one finding at a time, as a store lists them: JSON lines and the JSON
/// array's elements are written as they come, a table keeps only its cells (the column widths
/// need every row). A store of 400,000 findings listed as JSON lines holds one at a time.
pub enum StoredWriter {
    /// How many elements of the array are written.
    Json(usize),
    Lines,
    Table(Vec<[String; 8]>),
}

impl StoredWriter {
    pub fn new(format: &str) -> StoredWriter {
        match format {
            "json" => StoredWriter::Json(0),
            "jsonl" => StoredWriter::Lines,
            _ => StoredWriter::Table(Vec::new()),
        }
    }

    pub fn push(&mut self, out: &mut dyn Write, finding: &StoredFinding) -> io::Result<()> {
        match self {
            StoredWriter::Json(count) => {
                // Pretty-printed alone, then indented one level: the array's layout. (JSON
                // strings hold no raw line breaks, so every one is the layout's.)
                let mut element = Vec::new();
                write_json(&mut element, finding, true)?;
                out.write_all(if *count == 0 { b"[\n  " } else { b",\n  " })?;
                for (i, line) in element.split(|&b| b == b'\n').enumerate() {
                    if i > 0 {
                        out.write_all(b"\n  ")?;
                    }
                    out.write_all(line)?;
                }
                *count += 1;
            }
            StoredWriter::Lines => {
                write_json(out, finding, false)?;
                writeln!(out)?;
            }
            StoredWriter::Table(rows) => rows.push(row(finding)),
        }
        Ok(())
    }

    pub fn finish(self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            StoredWriter::Json(0) => writeln!(out, "[]"),
            StoredWriter::Json(_) => writeln!(out, "\n]"),
            StoredWriter::Lines => Ok(()),
            StoredWriter::Table(rows) => table(out, &rows),
        }
    }
}

fn row(f: &StoredFinding) -> [String; 8] {
    let field = |key: &str| terminal(f.finding.get(key).and_then(|v| v.as_str()).unwrap_or("-")).into_owned();
    let note = match (&f.reason, &f.ticket) {
        (Some(reason), Some(ticket)) => format!("{} ({})", terminal(reason), terminal(ticket)),
        (Some(reason), None) => terminal(reason).into_owned(),
        (None, Some(ticket)) => terminal(ticket).into_owned(),
        (None, None) => String::new(),
    };
    [
        f.id.to_string(),
        f.status.as_str().to_string(),
        field("level"),
        field("rule_id"),
        field("event_time"),
        field("principal_arn"),
        f.times_seen.to_string(),
        note,
    ]
}

fn table(out: &mut dyn Write, rows: &[[String; 8]]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
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
    for row in rows {
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
    for row in rows {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailhound_finding::Status;

    fn stored(id: i64) -> StoredFinding {
        StoredFinding {
            id,
            status: Status::New,
            reason: (id == 2).then(|| "known\n\"job\"".to_string()),
            ticket: None,
            first_seen: "2026-12-07T00:00:00Z".into(),
            last_seen: "2026-12-07T01:00:00Z".into(),
            times_seen: id,
            finding: serde_json::json!({"rule_id": "r", "tags": ["a", "b"], "nested": {"x": [1, {"y": null}]}, "empty": {}}),
        }
    }

    /// The array written one element at a time is the array serialized whole, byte for byte.
    #[test]
    fn the_json_array_written_as_it_comes_is_the_whole_array() {
        for n in [0, 1, 3] {
            let findings: Vec<StoredFinding> = (1..=n).map(stored).collect();
            let mut whole = Vec::new();
            write_json(&mut whole, &findings, true).expect("json");
            whole.push(b'\n');
            let mut streamed = Vec::new();
            write_stored(&mut streamed, "json", &findings).expect("json");
            assert_eq!(
                String::from_utf8(streamed).expect("utf8"),
                String::from_utf8(whole).expect("utf8")
            );
        }
    }
}
