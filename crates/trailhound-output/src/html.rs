//! The self-contained HTML report: one file, no external assets, opened in any browser.
//!
//! The page (assets/report.html) renders everything from a JSON document embedded in a
//! `<script type="application/json">` element, inserting log values with `textContent` only.
//! Here the JSON is made safe for that script context: `<`, `>` and `&` become `\u003c`, `\u003e`,
//! `\u0026` (so `</script>` in a log value cannot close the element), and control, bidi and
//! invisible format characters (U+2028/U+2029 among them) are escaped as in every JSON output.

use std::io::{self, Write};

use serde::Serialize;
use trailhound_finding::Finding;

const TEMPLATE: &str = include_str!("../assets/report.html");
const PLACEHOLDER: &str = "\"__TRAILHOUND_REPORT_DATA__\"";

/// What the report shows.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub generated_at: String,
    pub window: Window,
    pub sources: &'a [String],
    pub stats: serde_json::Value,
    pub findings: &'a [Finding],
    pub console_logins: serde_json::Value,
    pub top_principals: serde_json::Value,
    /// `[{tactic, technique, rules, findings}]`: the rules run, as an ATT&CK matrix (see
    /// [`crate::coverage_matrix`]), with the findings of each cell's rules.
    pub coverage: serde_json::Value,
    /// Each finding's OCSF Detection Finding, in the order of `findings` (see [`crate::ocsf`]).
    pub ocsf: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct Window {
    pub since: Option<String>,
    pub until: Option<String>,
}

/// JSON text safe to place inside a `<script>` element.
pub fn script_json<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let text = crate::escape::json_string(value).map_err(serde_json::Error::io)?;
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Writes the report page.
pub fn write_html(out: &mut dyn Write, report: &Report<'_>) -> io::Result<()> {
    let data = script_json(report)?;
    match TEMPLATE.split_once(PLACEHOLDER) {
        Some((head, tail)) => {
            out.write_all(head.as_bytes())?;
            out.write_all(data.as_bytes())?;
            out.write_all(tail.as_bytes())
        }
        None => Err(io::Error::other("the report template has no data placeholder")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_cannot_close_the_script_element() {
        let hostile = serde_json::json!({"v": "</script><script>alert(1)</script> & \u{2028}"});
        let text = script_json(&hostile).expect("json");
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&') && !text.contains('\u{2028}'));
        let back: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back, hostile);
    }

    #[test]
    fn the_template_has_one_placeholder() {
        assert_eq!(TEMPLATE.matches(PLACEHOLDER).count(), 1);
        let report = Report {
            generated_at: "2026-11-28T12:00:00Z".into(),
            window: Window {
                since: None,
                until: None,
            },
            sources: &["x".to_string()],
            stats: serde_json::json!({}),
            findings: &[],
            console_logins: serde_json::json!([]),
            top_principals: serde_json::json!([]),
            coverage: serde_json::json!([]),
            ocsf: Vec::new(),
        };
        let mut out = Vec::new();
        write_html(&mut out, &report).expect("write");
        let page = String::from_utf8(out).expect("utf8");
        assert!(
            !page.contains("__TRAILHOUND_REPORT_DATA__") && page.contains("\"generated_at\":\"2026-11-28T12:00:00Z\"")
        );
    }
}
