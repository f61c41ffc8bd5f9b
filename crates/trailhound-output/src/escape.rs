//! Escaping untrusted values for each medium, one function per medium:
//!
//! - [`terminal`]: text for a terminal (tables, the summary, rule listings);
//! - [`write_json`] / [`json_string`]: JSON and JSON lines;
//! - [`csv_cell`]: a CSV cell.
//!
//! What no medium passes raw is the same everywhere ([`hidden`]): C0 controls, DEL, C1 controls
//! (an escape sequence can recolour or rewrite a terminal, a CR/LF forge lines), bidi
//! embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069: text shown in another
//! order than it is), and the other invisible format characters (zero-width spaces and joiners,
//! the byte order mark, line and paragraph separators, tag characters). Each medium shows them
//! in its own visible escape: `\n`, `\u{1b}` in text, `\u001b` in JSON.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

/// Whether `c` must never reach an output raw: a control character (C0, DEL, C1) or an
/// invisible format character (Unicode general category Cf, which holds the bidi controls,
/// and the line and paragraph separators).
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{890}'..='\u{891}'
            | '\u{8e2}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}' | '\u{110cd}' | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// Text for a terminal: every [`hidden`] character shown as an escape (`\n`, `\r`, `\t`,
/// `\u{1b}`, `\u{202e}`), so a value is one line that can neither recolour, rewrite nor
/// reorder the screen.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A CSV cell: escaped as for a terminal (so a cell is one line with nothing hidden), and one a
/// spreadsheet will not evaluate: cells starting with `=`, `+`, `-`, `@`, tab or carriage return
/// get a leading apostrophe (OWASP's advice for CSV injection). The CSV writer quotes the cell
/// when its text needs it.
pub fn csv_cell(value: &str) -> Cow<'_, str> {
    let value = terminal(value);
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        value
    }
}

/// Writes `value` as JSON (`pretty`: indented) with every [`hidden`] character escaped
/// (`\u007f`, `\u202e`); serde_json alone escapes C0 controls only.
pub fn write_json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T, pretty: bool) -> io::Result<()> {
    if pretty {
        let mut serializer = serde_json::Serializer::with_formatter(out, Escaped(PrettyFormatter::new()));
        value.serialize(&mut serializer)?;
    } else {
        let mut serializer = serde_json::Serializer::with_formatter(out, Escaped(CompactFormatter));
        value.serialize(&mut serializer)?;
    }
    Ok(())
}

/// `value` as compact JSON text, escaped as by [`write_json`].
pub fn json_string<T: Serialize + ?Sized>(value: &T) -> io::Result<String> {
    let mut out = Vec::new();
    write_json(&mut out, value, false)?;
    String::from_utf8(out).map_err(io::Error::other)
}

/// JSON text (a document, or a fragment of one) with every [`hidden`] character escaped.
/// Outside strings JSON allows only tab, LF and CR of them (as whitespace), which stay.
pub fn json_text(text: &str) -> Cow<'_, str> {
    let escape = |c: char| hidden(c) && !matches!(c, '\t' | '\n' | '\r');
    if !text.chars().any(escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut units = [0u16; 2];
    for c in text.chars() {
        if escape(c) {
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A serde_json formatter that escapes [`hidden`] characters in strings and raw values.
struct Escaped<F>(F);

impl<F: Formatter> Formatter for Escaped<F> {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        writer.write_all(json_text(fragment).as_bytes())
    }

    fn write_raw_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        writer.write_all(json_text(fragment).as_bytes())
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_key(writer)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character class no output may pass raw.
    const HOSTILE: &str =
        "a\u{1b}[31mb\u{7}c\u{7f}d\u{9b}e\u{85}f\u{202e}g\u{2066}h\u{200b}i\u{feff}j\nk\rl\u{2028}m\u{e0041}n";

    fn nothing_hidden(text: &str) -> bool {
        !text.chars().any(hidden)
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("arn:aws:iam::1:user/x"), "arn:aws:iam::1:user/x");
    }

    #[test]
    fn csv_cells_show_controls_and_bidi_visibly() {
        let cell = csv_cell(HOSTILE);
        assert!(nothing_hidden(&cell), "{cell:?}");
        assert!(cell.contains("\\u{1b}[31m") && cell.contains("\\u{202e}") && cell.contains("j\\nk"));
        assert_eq!(csv_cell("\tx"), "\\tx", "a leading tab is shown, so no formula either");
        assert_eq!(csv_cell("\u{202e}=1+1"), "\\u{202e}=1+1");
    }

    #[test]
    fn terminal_text_shows_every_hidden_character() {
        let text = terminal(HOSTILE);
        assert!(nothing_hidden(&text), "{text:?}");
        assert_eq!(terminal("plain ünïcode 日本"), "plain ünïcode 日本");
        assert_eq!(terminal("\u{1b}[31mred\u{7}"), "\\u{1b}[31mred\\u{7}");
        assert_eq!(terminal("a\nb\tc\u{9b}d\u{202e}"), "a\\nb\\tc\\u{9b}d\\u{202e}");
        assert_eq!(terminal("x\u{200b}y\u{feff}"), "x\\u{200b}y\\u{feff}");
    }

    #[test]
    fn json_escapes_del_c1_and_bidi_that_serde_json_passes() {
        let value = serde_json::json!({ HOSTILE: [HOSTILE], "raw": serde_json::value::to_raw_value(HOSTILE).ok() });
        for pretty in [false, true] {
            let mut out = Vec::new();
            write_json(&mut out, &value, pretty).expect("write");
            let text = String::from_utf8(out).expect("utf8");
            let outside = if pretty { text.replace(['\n'], "") } else { text.clone() };
            assert!(nothing_hidden(&outside), "{text:?}");
            assert!(text.contains("\\u007f") && text.contains("\\u009b") && text.contains("\\u202e"));
            assert!(
                text.contains("\\udb40\\udc41"),
                "astral characters as surrogate pairs: {text}"
            );
            let back: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
            assert_eq!(back, value);
        }
    }
}
