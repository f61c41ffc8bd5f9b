//! Plain tables of text: what `events`, `timeline` and `summary` print. One writer for every
//! format so each command only decides its columns.

use std::borrow::Cow;
use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

use crate::escape::{csv_cell, terminal, write_json};

/// Formats for rows of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    Table,
    Json,
    Jsonl,
    Csv,
}

/// One value of a row: text, a missing value (`-` in tables, an empty CSV cell, `null` in JSON),
/// or a count (a number in JSON).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    Text(String),
    Missing,
    Count(u64),
}

impl From<Option<String>> for Cell {
    fn from(value: Option<String>) -> Cell {
        value.map_or(Cell::Missing, Cell::Text)
    }
}

/// What a row's value is made of: a [`Cell`], or plain text.
pub trait CellValue {
    /// The value as table and CSV text.
    fn text(&self) -> Cow<'_, str>;
    /// The value in JSON.
    fn json(&self) -> serde_json::Value;
    /// The value as a CSV cell (before formula protection).
    fn csv(&self) -> Cow<'_, str> {
        self.text()
    }
}

impl CellValue for String {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
    fn json(&self) -> serde_json::Value {
        serde_json::Value::String(self.clone())
    }
}

impl CellValue for Cell {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Cell::Text(text) => Cow::Borrowed(text),
            Cell::Missing => Cow::Borrowed("-"),
            Cell::Count(n) => Cow::Owned(n.to_string()),
        }
    }
    fn csv(&self) -> Cow<'_, str> {
        match self {
            Cell::Missing => Cow::Borrowed(""),
            other => other.text(),
        }
    }
    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Text(text) => serde_json::Value::String(text.clone()),
            Cell::Missing => serde_json::Value::Null,
            Cell::Count(n) => serde_json::Value::from(*n),
        }
    }
}

/// Writes `rows` under `columns` (the JSON keys; upper-cased as table headers). Table cells are
/// cut at `max_width` columns (0: never).
pub fn write_rows<C: CellValue>(
    out: &mut dyn Write,
    format: RowFormat,
    columns: &[&str],
    rows: &[Vec<C>],
    max_width: usize,
) -> io::Result<()> {
    match format {
        RowFormat::Json | RowFormat::Jsonl => {
            let objects: Vec<serde_json::Map<String, serde_json::Value>> = rows
                .iter()
                .map(|row| {
                    columns
                        .iter()
                        .zip(row)
                        .map(|(k, v)| (k.to_string(), v.json()))
                        .collect()
                })
                .collect();
            if format == RowFormat::Json {
                write_json(out, &objects, true)?;
                return writeln!(out);
            }
            for object in objects {
                write_json(out, &object, false)?;
                writeln!(out)?;
            }
            Ok(())
        }
        RowFormat::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(columns)?;
            for row in rows {
                writer.write_record(row.iter().map(|c| csv_cell(&c.csv()).into_owned()))?;
            }
            writer.flush()
        }
        RowFormat::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|row| row.iter().map(|c| cut(&terminal(&c.text()), max_width)).collect())
                .collect();
            let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
            let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
            for row in &cells {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.width());
                }
            }
            let line = |row: &[String]| {
                let padded: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.width()))))
                    .collect();
                padded.join("  ").trim_end().to_string()
            };
            writeln!(out, "{}", line(&header))?;
            for row in &cells {
                writeln!(out, "{}", line(row))?;
            }
            Ok(())
        }
    }
}

fn cut(text: &str, max: usize) -> String {
    if max == 0 || text.width() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    while out.width() > max.saturating_sub(1) {
        out.pop();
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: RowFormat) -> String {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a".to_string(), "=cmd()".to_string()],
            vec!["\u{1b}[31mlong value here".to_string(), "x".to_string()],
        ];
        write_rows(&mut out, format, &["name", "value"], &rows, 10).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn every_format_escapes_for_its_medium() {
        let table = render(RowFormat::Table);
        assert!(
            table.starts_with("NAME") && !table.contains('\u{1b}') && table.contains('…'),
            "{table}"
        );
        assert!(render(RowFormat::Csv).contains("'=cmd()"));
        let json: Vec<serde_json::Value> = serde_json::from_str(&render(RowFormat::Json)).expect("json");
        assert_eq!(json[0]["value"], "=cmd()");
        assert_eq!(render(RowFormat::Jsonl).lines().count(), 2);
    }

    /// A missing value is `null` and a count a number in JSON; tables show `-`, CSV an empty cell.
    #[test]
    fn json_gets_null_for_missing_values_and_numbers_for_counts() {
        let rows = vec![vec![
            Cell::Text("AccessDenied".into()),
            Cell::Missing,
            Cell::Count(15079),
        ]];
        let render = |format| {
            let mut out = Vec::new();
            write_rows(&mut out, format, &["name", "error_code", "count"], &rows, 0).expect("write");
            String::from_utf8(out).expect("utf8")
        };
        let json: serde_json::Value = serde_json::from_str(render(RowFormat::Jsonl).trim()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"name": "AccessDenied", "error_code": null, "count": 15079})
        );
        assert!(render(RowFormat::Table).contains("AccessDenied  -           15079"));
        assert!(render(RowFormat::Csv).ends_with("AccessDenied,,15079\n"));
    }
}
