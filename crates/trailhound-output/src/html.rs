//! The self-contained HTML report: one file, no external assets, opened in any browser.
//!
//! The page (assets/report.html) renders everything from a JSON document embedded in a
//! `<script type="application/json">` element, inserting log values with `textContent` only.
//! Here the JSON is made safe for that script context: `<`, `>` and `&` become `\u003c`, `\u003e`,
//! `\u0026` (so `</script>` in a log value cannot close the element), and control, bidi and
//! invisible format characters (U+2028/U+2029 among them) are escaped as in every JSON output.

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
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
    pub ocsf: OcsfFindings<'a>,
}

/// The OCSF Detection Findings of findings, made one at a time as the report is written (a
/// report of 400,000 findings held all of them at once, as JSON trees: gigabytes).
#[derive(Debug, Clone, Copy)]
pub struct OcsfFindings<'a>(pub &'a [Finding]);

impl Serialize for OcsfFindings<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for finding in self.0 {
            seq.serialize_element(&crate::ocsf::detection_finding(finding))?;
        }
        seq.end()
    }
}

/// Writes JSON text through to `out` with `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`:
/// ASCII bytes, never part of a longer UTF-8 sequence, so each write is escaped on its own.
/// (U+2028 and U+2029 are escaped already, as every hidden character is in our JSON.)
struct ScriptSafe<'w>(&'w mut dyn Write);

impl Write for ScriptSafe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(at) = rest.iter().position(|b| matches!(b, b'<' | b'>' | b'&')) {
            self.0.write_all(&rest[..at])?;
            self.0.write_all(match rest[at] {
                b'<' => b"\\u003c",
                b'>' => b"\\u003e",
                _ => b"\\u0026",
            })?;
            rest = &rest[at + 1..];
        }
        self.0.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[derive(Debug, Serialize)]
pub struct Window {
    pub since: Option<String>,
    pub until: Option<String>,
}

/// JSON text safe to place inside a `<script>` element.
pub fn script_json<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    crate::escape::write_json(&mut ScriptSafe(&mut out), value, false).map_err(serde_json::Error::io)?;
    String::from_utf8(out).map_err(|e| serde_json::Error::io(io::Error::other(e)))
}

/// Writes the report page, its data streamed into the page as it is serialized (never held
/// whole: a report of many findings is as large as their JSON lines).
pub fn write_html(out: &mut dyn Write, report: &Report<'_>) -> io::Result<()> {
    let Some((head, tail)) = TEMPLATE.split_once(PLACEHOLDER) else {
        return Err(io::Error::other("the report template has no data placeholder"));
    };
    out.write_all(head.as_bytes())?;
    crate::escape::write_json(&mut ScriptSafe(out), report, false)?;
    out.write_all(tail.as_bytes())
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
            ocsf: OcsfFindings(&[]),
        };
        let mut out = Vec::new();
        write_html(&mut out, &report).expect("write");
        let page = String::from_utf8(out).expect("utf8");
        assert!(
            !page.contains("__TRAILHOUND_REPORT_DATA__") && page.contains("\"generated_at\":\"2026-11-28T12:00:00Z\"")
        );
    }
}
