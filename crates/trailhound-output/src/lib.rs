//! Writing findings out: the only place that does.
//!
//! Every format escapes log values for its medium: the table never lets a control character or
//! escape sequence reach the terminal, CSV neutralises cells a spreadsheet would run as formulas,
//! JSON is JSON-escaped by construction. Run summaries for stderr are rendered here too.

mod csv;
mod escape;
mod format;
mod html;
mod rows;
mod rules;
mod stored;
mod summary;
mod table;

pub use escape::{csv_cell, terminal};
pub use format::{Format, Options, write_findings};
pub use html::{Report, Window, script_json, write_html};
pub use rows::{RowFormat, write_rows};
pub use rules::{write_rule, write_rule_list, write_test_report};
pub use stored::write_stored;
pub use summary::{ReadFigures, Summary, write_summary};
