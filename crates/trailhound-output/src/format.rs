//! The output formats and the entry point that writes a list of findings.

use std::io::{self, Write};

use trailhound_finding::Finding;

use crate::escape::write_json;

/// Closed set of finding formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a person at a terminal.
    Table,
    /// One JSON array.
    Json,
    /// One JSON object a line.
    Jsonl,
    Csv,
    /// A self-contained HTML report (see `write_html`; needs more than findings).
    Html,
    /// OCSF Detection Findings (class 2004), one JSON object a line (see `ocsf`).
    Ocsf,
}

/// How to write.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Colour the table (a terminal, and `NO_COLOR` unset).
    pub color: bool,
    /// Widest a table cell gets before it is cut; 0 means no limit.
    pub max_width: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            color: false,
            max_width: 48,
        }
    }
}

/// Writes `findings` in `format`.
pub fn write_findings(out: &mut dyn Write, format: Format, findings: &[Finding], options: &Options) -> io::Result<()> {
    match format {
        Format::Table => crate::table::write(out, findings, options),
        Format::Json => {
            write_json(out, findings, true)?;
            out.write_all(b"\n")
        }
        Format::Jsonl => {
            for finding in findings {
                write_json(out, finding, false)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        Format::Csv => crate::csv::write(out, findings),
        Format::Html => Err(io::Error::other("the HTML report is written by write_html")),
        Format::Ocsf => {
            for finding in findings {
                write_json(out, &crate::ocsf::detection_finding(finding), false)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
    }
}
