//! Writing findings out: the only place that does.
//!
//! Every format escapes log values for its medium (see [`escape`](crate::escape)): no control
//! character, bidi control or invisible format character from a value reaches any output raw;
//! the table and summary show them as `\u{1b}`, JSON as `\u001b`, CSV as text too, and CSV
//! neutralises cells a spreadsheet would run as formulas. Run summaries for stderr are rendered
//! here too.

mod csv;
mod escape;
mod format;
mod html;
pub mod ocsf;
mod rows;
mod rules;
mod stored;
mod summary;
mod table;

pub use escape::{csv_cell, hidden, json_string, json_text, terminal, write_json};
pub use format::{Format, Options, write_findings};
pub use html::{OcsfFindings, Report, Window, script_json, write_html};
pub use rows::{Cell, CellValue, RowFormat, write_rows};
pub use rules::{CoverageMatrix, coverage_matrix, write_coverage, write_rule, write_rule_list, write_test_report};
pub use stored::{StoredWriter, write_stored};
pub use summary::{ReadFigures, Summary, write_summary};
